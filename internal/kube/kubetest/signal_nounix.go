//go:build !unix

package kubetest

import (
	"os"
	"os/exec"
)

// terminateSignal asks a process to shut down; without Unix signals it is a kill.
var terminateSignal = os.Kill

// setDeathSignal does nothing where the kernel offers no parent-death signal.
func setDeathSignal(*exec.Cmd) {}
