package host

import (
	"os/exec"
	"syscall"
)

// pluginCommand runs a plugin binary that the kernel kills when keyfleetd
// dies, even by SIGKILL, so that no plugin outlives its daemon. The signal
// is tied to the OS thread that started the process; Go keeps its threads
// for the life of the process unless a goroutine locked to one exits,
// which the host never does.
func pluginCommand(path string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
