//go:build unix

package workload

import (
	"errors"
	"os"
	"syscall"
)

// procAttr puts each instance in a process group of its own, so a stop reaches the
// program's children too (a shell script's, say), not only the program.
func procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(a)
	return a
}

// terminate asks the instance's process group to stop.
func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

// kill ends the instance's process group at once; also used after a process exits, to
// take down children it left behind holding its port.
func kill(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }

func signalGroup(p *os.Process, sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
