// Command testplugin is a factor plugin for the host's tests. Its
// verification response picks a behaviour: "crash" exits the process
// mid-call, "hang" never answers, "log" writes a log line, "badlog" writes
// malformed log lines straight to the host's pipe, "pid" succeeds with its
// process id as state, "env" succeeds with its GOMAXPROCS and the
// names of its environment variables as state, "ok" succeeds and anything else fails. Build flags set its kind and protocol version:
//
//	go build -ldflags "-X main.kind=flaky -X main.protocol=2"
//
// A protocol version the SDK still has but is not its newest (1) makes a
// plugin built against an older SDK; one it does not have, an
// incompatible plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var (
	kind     = "flaky"
	protocol = "1"
)

type factor struct{}

func (factor) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: kind, DisplayName: "Flaky test factor", Version: "0.0.1"}, nil
}

func (factor) BeginEnrol(context.Context, sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	return sdk.BeginEnrolResponse{}, sdk.ErrUnsupported
}

func (factor) FinishEnrol(context.Context, sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	return sdk.FinishEnrolResponse{}, sdk.ErrUnsupported
}

func (factor) BeginVerify(context.Context, sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	return sdk.BeginVerifyResponse{}, nil
}

func (factor) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	switch string(req.Response) {
	case "crash":
		os.Exit(3)
	case "hang":
		time.Sleep(time.Hour)
	case "log":
		sdk.Logger().Info("hello from the plugin", "pid", os.Getpid())
		return sdk.FinishVerifyResponse{OK: true}, nil
	case "badlog":
		// File descriptor 2 is still the pipe to the host; os.Stderr was
		// pointed elsewhere by the SDK.
		raw := os.NewFile(2, "host-stderr")
		fmt.Fprint(raw, "{\"@message\":1,\"@level\":\"error\"}\n{\"@level\":[]}\n{\"@timestamp\":false,\"@message\":\"bad time\"}\n")
		fmt.Fprint(raw, "{\"@message\":\"after the bad lines\",\"@level\":\"warn\"}\n")
		return sdk.FinishVerifyResponse{OK: true}, nil
	case "pid":
		return sdk.FinishVerifyResponse{OK: true, State: []byte(strconv.Itoa(os.Getpid()))}, nil
	case "env":
		names := []string{"gomaxprocs=" + strconv.Itoa(runtime.GOMAXPROCS(0))}
		for _, kv := range os.Environ() {
			names = append(names, strings.SplitN(kv, "=", 2)[0])
		}
		return sdk.FinishVerifyResponse{OK: true, State: []byte(strings.Join(names, " "))}, nil
	case "ok":
		return sdk.FinishVerifyResponse{OK: true, State: append(req.State, '+')}, nil
	}
	return sdk.FinishVerifyResponse{Reason: "not ok"}, nil
}

func main() {
	v, _ := strconv.Atoi(protocol)
	if v == sdk.ProtocolVersion {
		sdk.Serve(factor{})
		return
	}
	// Only version v: an older plugin, or an incompatible one (the newest
	// set under a version the host does not know).
	set, ok := sdk.PluginSets(factor{})[v]
	if !ok {
		set = sdk.PluginSets(factor{})[sdk.ProtocolVersion]
	}
	hs := sdk.Handshake
	hs.ProtocolVersion = uint(v)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{v: set},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
