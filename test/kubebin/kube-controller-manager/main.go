// Command kube-controller-manager is the Kubernetes controller manager of the release in
// go.mod: Deployments get ReplicaSets, ReplicaSets get Pods, Services get EndpointSlices.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
