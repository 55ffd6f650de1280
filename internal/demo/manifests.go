package demo

import (
	"fmt"
	"strings"
)

// ports are where the demo's parts listen; all are picked free on loopback.
type ports struct {
	gateway, loadtester, egress int
}

// manifests returns the seed demo's objects for podinfo at a version, as YAML: the
// namespace and mesh, podinfo as a Workload, the load tester, the gateway and the seed's
// Canary with its times scaled down.
func manifests(p ports, version string, errorRate float64) string {
	logo := map[string]string{
		"3.1.0": "https://eks.handson.flagger.dev/cuddle_clap.gif",
		"3.1.1": "https://eks.handson.flagger.dev/cuddle_bunny.gif",
	}[version]
	if logo == "" {
		logo = "https://eks.handson.flagger.dev/cuddle_bunny.gif"
	}
	args := []string{"--version", version}
	if errorRate > 0 {
		args = append(args, "--error-rate", fmt.Sprint(errorRate))
	}
	r := strings.NewReplacer(
		"{{gateway}}", fmt.Sprint(p.gateway),
		"{{loadtester}}", fmt.Sprint(p.loadtester),
		"{{egress}}", fmt.Sprint(p.egress),
		"{{args}}", `["`+strings.Join(args, `", "`)+`"]`,
		"{{logo}}", logo,
	)
	return r.Replace(demoYAML)
}

const demoYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    appmesh.k8s.aws/sidecarInjectorWebhook: enabled
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: flaggerdemo
spec:
  namespaceSelector: {}
  egressFilter:
    type: ALLOW_ALL
---
apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata:
  name: podinfo
  namespace: demo
spec:
  replicas: 2
  command: [canarymesh, demo-app]
  args: {{args}}
  env:
    - name: PODINFO_UI_LOGO
      value: {{logo}}
    - name: PODINFO_UI_COLOR
      value: "#34577c"
  labels:
    app: podinfo
  readinessProbe:
    httpGet:
      path: /readyz
    periodSeconds: 1
---
apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata:
  name: flagger-loadtester
  namespace: demo
spec:
  replicas: 1
  port: {{loadtester}}
  command: [canarymesh, loadtester]
  args: [--listen, "127.0.0.1:{{loadtester}}"]
  labels:
    app: flagger-loadtester
  readinessProbe:
    httpGet:
      path: /healthz
    periodSeconds: 1
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata:
  name: appmesh-gateway
  namespace: demo
spec:
  namespaceSelector: {}
  listeners:
    - portMapping:
        port: {{gateway}}
        protocol: http
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata:
  name: podinfo
  namespace: demo
spec:
  httpRoute:
    match:
      prefix: /
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: podinfo
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: demo
spec:
  progressDeadlineSeconds: 60
  targetRef:
    apiVersion: canarymesh.dev/v1alpha1
    kind: Workload
    name: podinfo
  service:
    port: 9898
    portName: http
    hosts: ["*"]
    meshName: flaggerdemo
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,client-error,stream-error"
  analysis:
    interval: 2s
    threshold: 3
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 6s
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 6s
    webhooks:
      - name: load-test
        url: http://127.0.0.1:{{loadtester}}/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 -host podinfo-canary.demo http://127.0.0.1:{{egress}}/"
`
