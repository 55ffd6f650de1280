//go:build unix

package kubetest

import (
	"os/exec"
	"syscall"
)

// terminateSignal asks a process to shut down cleanly.
var terminateSignal = syscall.SIGTERM

// setDeathSignal makes the kernel kill the child when the test binary dies without
// running its cleanups (a panic, a timeout), on systems that support it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	setPdeathsig(cmd.SysProcAttr)
}
