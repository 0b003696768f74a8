//go:build !linux

package host

import (
	"os/exec"
	"strconv"
)

// pluginCommand runs a plugin binary. Outside Linux nothing ties a
// plugin's life to the daemon's: one can outlive a keyfleetd that was
// killed (keyfleetd is built and tested for Linux). Its environment is
// GOMAXPROCS=procs alone, as on Linux.
func pluginCommand(path string, procs int) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.Env = []string{"GOMAXPROCS=" + strconv.Itoa(procs)}
	return cmd
}
