//go:build !linux

package host

import "os/exec"

// pluginCommand runs a plugin binary. Outside Linux nothing ties a
// plugin's life to the daemon's: one can outlive a keyfleetd that was
// killed (keyfleetd is built and tested for Linux).
func pluginCommand(path string) *exec.Cmd { return exec.Command(path) }
