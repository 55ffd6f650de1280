//go:build unix && !linux

package kubetest

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
