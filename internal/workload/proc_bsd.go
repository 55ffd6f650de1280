//go:build unix && !linux

package workload

import "syscall"

// setParentDeathSignal has no equivalent here: instances outlive a supervisor that is
// killed with SIGKILL.
func setParentDeathSignal(*syscall.SysProcAttr) {}
