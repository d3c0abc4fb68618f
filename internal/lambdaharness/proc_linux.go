package lambdaharness

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the emulator in its own process group (so that it and
// the function process it starts are stopped together) and has the
// kernel kill it if the harness dies without cleaning up.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
