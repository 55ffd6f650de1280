package workload

import "syscall"

// setParentDeathSignal makes the kernel kill an instance if canarymesh itself dies
// without stopping it, so a restarted supervisor never finds old instances on its
// ports: it adopts nothing and starts afresh.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
