// Command kube-scheduler is the Kubernetes scheduler of the release in go.mod; it binds
// Pods to the fake Nodes that kwok keeps Ready.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
