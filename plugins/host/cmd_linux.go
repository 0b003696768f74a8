package host

import (
	"os/exec"
	"strconv"
	"syscall"
)

// pluginCommand runs a plugin binary that the kernel kills when keyfleetd
// dies, even by SIGKILL, so that no plugin outlives its daemon. The signal
// is tied to the OS thread that started the process; Go keeps its threads
// for the life of the process unless a goroutine locked to one exits,
// which the host never does. Its environment is GOMAXPROCS=procs alone;
// go-plugin adds its own variables and nothing of the daemon's.
func pluginCommand(path string, procs int) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.Env = []string{"GOMAXPROCS=" + strconv.Itoa(procs)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
