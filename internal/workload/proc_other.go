//go:build !unix

package workload

import (
	"os"
	"syscall"
)

// Without process groups and signals, an instance is killed outright and its own
// children are not reached.
func procAttr() *syscall.SysProcAttr { return nil }

func terminate(p *os.Process) error { return p.Kill() }

func kill(p *os.Process) error { return p.Kill() }
