package sdktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/keyfleet/keyfleet/plugins/host"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// GRPC serves impl through the SDK's gRPC shims over an in-process
// connection (go-plugin's test transport) and returns the client side, so
// a test crosses the same protobuf boundary as a real plugin without
// starting a process. It speaks the newest protocol version; GRPCVersion
// picks one.
func GRPC(t testing.TB, impl sdk.Factor) sdk.Factor {
	t.Helper()
	return GRPCVersion(t, impl, sdk.ProtocolVersion)
}

// GRPCVersion is GRPC in the given protocol version (1: a unary call per
// call; 2: calls over one stream).
func GRPCVersion(t testing.TB, impl sdk.Factor, version int) sdk.Factor {
	t.Helper()
	set, ok := sdk.PluginSets(impl)[version]
	if !ok {
		t.Fatalf("sdktest: no protocol version %d", version)
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, set)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispensing the factor plugin: %v", err)
	}
	return raw.(sdk.Factor)
}

// Build compiles the main package pkg (an import path or a ./relative
// path, as for go build) into a temporary folder and returns the binary's
// path; the file is named keyfleet-plugin-<name>. Extra args go to go
// build before the package (e.g. "-ldflags", "...").
func Build(t testing.TB, pkg, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), host.Prefix+name)
	cmdArgs := append(append([]string{"build", "-o", out}, args...), pkg)
	cmd := exec.Command("go", cmdArgs...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sdktest: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// Sum returns the hex SHA-256 of the file at path, as sha256sum prints it.
func Sum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Plugin starts the plugin binary at path through the real plugin host:
// pinned by its checksum, AutoMTLS, the host's timeouts and restarts. It
// returns the host's sdk.Factor for it; the process stops when the test
// ends. Log lines go to logger (nil discards).
func Plugin(t testing.TB, path string, logger *slog.Logger) sdk.Factor {
	t.Helper()
	cfg := host.Config{Dir: filepath.Dir(path), Plugins: []host.PluginConfig{{
		Name: filepath.Base(path), SHA256: Sum(t, path), Timeout: host.Duration{Duration: 30 * time.Second},
	}}}
	h, err := host.New(cfg, host.Options{Logger: logger})
	if err != nil {
		t.Fatalf("sdktest: plugin host: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	kinds, err := h.Load(context.Background())
	if err != nil || len(kinds) != 1 {
		t.Fatalf("sdktest: loading %s: %d kinds, err %v (see the log)", path, len(kinds), err)
	}
	return kinds[0]
}
