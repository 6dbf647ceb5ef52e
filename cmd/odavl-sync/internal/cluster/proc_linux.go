package cluster

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the process when the harness dies, so a crashed
// test leaves no cluster behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
