package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

// slow answers FinishVerify after its response's delay, or when its
// context ends, and reports the deadline it was given.
type slow struct {
	echo
	deadlines chan time.Duration
	started   chan struct{} // told when a call begins, if set
}

func (s slow) FinishVerify(ctx context.Context, r sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	if d, ok := ctx.Deadline(); ok && s.deadlines != nil {
		s.deadlines <- time.Until(d)
	}
	if s.started != nil {
		s.started <- struct{}{}
	}
	delay, _ := time.ParseDuration(string(r.Response))
	select {
	case <-time.After(delay):
		return sdk.FinishVerifyResponse{OK: true, Reason: r.FactorID}, nil
	case <-ctx.Done():
		return sdk.FinishVerifyResponse{}, ctx.Err()
	}
}

func TestCallsOnOneStreamEachGetTheirOwnAnswer(t *testing.T) {
	f := sdktest.GRPCVersion(t, slow{}, 2)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("f%d", i)
			delay := fmt.Sprintf("%dms", i%7) // replies come back out of order
			res, err := f.FinishVerify(context.Background(), sdk.FinishVerifyRequest{FactorID: id, Response: []byte(delay)})
			if err != nil || !res.OK || res.Reason != id {
				t.Errorf("call %s came back as %+v, %v", id, res, err)
			}
		}()
	}
	wg.Wait()
}

func TestAStreamedCallCarriesItsDeadlineAndEndsWithIt(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	f := sdktest.GRPCVersion(t, slow{deadlines: deadlines}, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := f.FinishVerify(ctx, sdk.FinishVerifyRequest{Response: []byte("1m")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call past its deadline returned %v, want DeadlineExceeded", err)
	}
	if d := <-deadlines; d <= 0 || d > 200*time.Millisecond {
		t.Errorf("the plugin was given %s to answer, want the caller's 200ms", d)
	}
	// The stream still serves the next call.
	res, err := f.FinishVerify(context.Background(), sdk.FinishVerifyRequest{FactorID: "next", Response: []byte("0s")})
	if err != nil || res.Reason != "next" {
		t.Fatalf("the call after a timed-out one: %+v, %v", res, err)
	}
}

// When the plugin's end goes away, calls waiting on the stream and calls
// after it fail as a dead process's unary calls do: ErrUnavailable with
// the transport's code, which the host takes as a crash and restarts.
func TestCallsFailAsUnavailableWhenTheStreamEnds(t *testing.T) {
	started := make(chan struct{}, 2)
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.PluginSets(slow{started: started})[2])
	defer client.Close()
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	f := raw.(sdk.Factor)
	if _, err := f.FinishVerify(context.Background(), sdk.FinishVerifyRequest{Response: []byte("0s")}); err != nil {
		t.Fatal(err)
	}
	<-started
	waiting := make(chan error, 1)
	go func() {
		_, err := f.FinishVerify(context.Background(), sdk.FinishVerifyRequest{Response: []byte("1m")})
		waiting <- err
	}()
	<-started // it reached the plugin
	server.Stop()
	for _, err := range []error{<-waiting, second(f.BeginVerify(context.Background(), sdk.BeginVerifyRequest{}))} {
		var re *sdk.RemoteError
		if !errors.Is(err, sdk.ErrUnavailable) || !errors.As(err, &re) || re.Code != codes.Unavailable {
			t.Fatalf("a call on a dead stream returned %#v, want ErrUnavailable with code Unavailable", err)
		}
	}
}
