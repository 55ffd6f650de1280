package printer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func path(p string) func(map[string]any, time.Time) string {
	return func(m map[string]any, _ time.Time) string { return str(m, p) }
}

func cond(typ string) func(map[string]any, time.Time) string {
	return func(m map[string]any, _ time.Time) string { return condition(m, typ) }
}

var (
	meshCol  = Column{Header: "MESH", Cell: path("spec.meshRef.name")}
	readyCol = Column{Header: "READY", Cell: cond("Ready")}
	awsCol   = Column{Header: "ARN-NAME", Wide: true, Cell: path("spec.awsName")}
)

// kindColumns are each kind's table columns after NAME (AGE is added last).
var kindColumns = map[string][]Column{
	"Namespace": {{Header: "LABELS", Wide: true, Cell: func(m map[string]any, _ time.Time) string { return joinMap(get(m, "metadata.labels")) }}},
	"Mesh": {
		{Header: "NAMESPACE-SELECTOR", Cell: namespaceSelector},
		{Header: "EGRESS", Cell: path("spec.egressFilter.type")},
		readyCol,
	},
	"VirtualNode": {meshCol, {Header: "LISTENERS", Cell: listeners}, {Header: "DISCOVERY", Cell: discovery}, readyCol,
		{Header: "BACKENDS", Wide: true, Cell: backends}, awsCol},
	"VirtualService": {meshCol, {Header: "PROVIDER", Cell: provider}, readyCol, awsCol},
	"VirtualRouter":  {meshCol, {Header: "ROUTES", Cell: routes}, readyCol, awsCol},
	"VirtualGateway": {meshCol, {Header: "LISTENERS", Cell: listeners}, readyCol, awsCol},
	"GatewayRoute":   {meshCol, {Header: "MATCH", Cell: gatewayMatch}, {Header: "TARGET", Cell: gatewayTarget}, readyCol},
	"Canary": {
		{Header: "STATUS", Cell: path("status.phase")},
		{Header: "WEIGHT", Cell: func(m map[string]any, _ time.Time) string { return orZero(str(m, "status.canaryWeight")) }},
		{Header: "FAILEDCHECKS", Cell: func(m map[string]any, _ time.Time) string { return orZero(str(m, "status.failedChecks")) }},
		{Header: "SUCCESS-RATE", Cell: lastMetric("request-success-rate", "%")},
		{Header: "P99", Cell: lastMetric("request-duration", "ms")},
		{Header: "TARGET", Wide: true, Cell: func(m map[string]any, _ time.Time) string {
			return str(m, "spec.targetRef.kind") + "/" + str(m, "spec.targetRef.name")
		}},
		{Header: "LASTTRANSITION", Cell: path("status.lastTransitionTime")},
	},
	"MetricTemplate": {{Header: "PROVIDER", Cell: path("spec.provider.type")}, readyCol, {Header: "ADDRESS", Wide: true, Cell: path("spec.provider.address")}},
	"AlertProvider":  {{Header: "TYPE", Cell: path("spec.type")}, readyCol, {Header: "CHANNEL", Wide: true, Cell: path("spec.channel")}},
	"Event": {
		{Header: "TYPE", Cell: path("type")},
		{Header: "REASON", Cell: path("reason")},
		{Header: "OBJECT", Cell: func(m map[string]any, _ time.Time) string {
			return strings.ToLower(str(m, "involvedObject.kind")) + "/" + str(m, "involvedObject.name")
		}},
		{Header: "COUNT", Cell: path("count")},
		{Header: "MESSAGE", Cell: path("message")},
	},
	"Workload": {
		{Header: "READY", Cell: func(m map[string]any, _ time.Time) string {
			return orZero(str(m, "status.readyReplicas")) + "/" + orZero(str(m, "spec.replicas"))
		}},
		{Header: "PORT", Cell: path("spec.port")},
		{Header: "COMMAND", Wide: true, Cell: func(m map[string]any, _ time.Time) string { return joinList(list(m, "spec.command")) }},
	},
}

// lastMetric shows the last value of a metric check from status.lastMetrics, with its
// unit, or "-" before the first measurement (or when it had no data).
func lastMetric(name, unit string) func(map[string]any, time.Time) string {
	return func(m map[string]any, _ time.Time) string {
		for _, r := range list(m, "status.lastMetrics") {
			if str(r, "name") != name {
				continue
			}
			v, ok := get(r, "value").(float64)
			if !ok || strings.Contains(str(r, "message"), "no data") || strings.Contains(str(r, "message"), "query failed") {
				return "-"
			}
			return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + unit
		}
		return "-"
	}
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func joinList(l []any) string {
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " ")
}

func namespaceSelector(m map[string]any, _ time.Time) string {
	sel := get(m, "spec.namespaceSelector")
	if sel == nil {
		return "<none>"
	}
	parts := []string{}
	if ml := joinMap(get(sel, "matchLabels")); ml != "" {
		parts = append(parts, ml)
	}
	for _, e := range list(sel, "matchExpressions") {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", str(e, "key"), strings.ToLower(str(e, "operator")), joinList(list(e, "values"))))
	}
	if len(parts) == 0 {
		return "<all>"
	}
	return strings.Join(parts, ",")
}

func listeners(m map[string]any, _ time.Time) string {
	var parts []string
	for _, l := range list(m, "spec.listeners") {
		parts = append(parts, str(l, "portMapping.port")+"/"+str(l, "portMapping.protocol"))
	}
	return strings.Join(parts, ",")
}

func discovery(m map[string]any, _ time.Time) string {
	switch {
	case get(m, "spec.serviceDiscovery.dns") != nil:
		return "dns:" + str(m, "spec.serviceDiscovery.dns.hostname")
	case get(m, "spec.serviceDiscovery.static") != nil:
		return fmt.Sprintf("static:%d", len(list(m, "spec.serviceDiscovery.static")))
	case get(m, "spec.serviceDiscovery.awsCloudMap") != nil:
		return "cloudmap:" + str(m, "spec.serviceDiscovery.awsCloudMap.serviceName")
	case get(m, "spec.podSelector") != nil:
		return "pods:" + joinMap(get(m, "spec.podSelector.matchLabels"))
	}
	return ""
}

func backends(m map[string]any, _ time.Time) string {
	var parts []string
	for _, b := range list(m, "spec.backends") {
		switch {
		case str(b, "virtualService.virtualServiceRef.name") != "":
			parts = append(parts, str(b, "virtualService.virtualServiceRef.name"))
		case str(b, "virtualService.virtualServiceName") != "":
			parts = append(parts, str(b, "virtualService.virtualServiceName"))
		default:
			parts = append(parts, str(b, "virtualService.virtualServiceARN"))
		}
	}
	return strings.Join(parts, ",")
}

func provider(m map[string]any, _ time.Time) string {
	switch {
	case get(m, "spec.provider.virtualRouter") != nil:
		return "router:" + str(m, "spec.provider.virtualRouter.virtualRouterRef.name")
	case get(m, "spec.provider.virtualNode") != nil:
		return "node:" + str(m, "spec.provider.virtualNode.virtualNodeRef.name")
	}
	return ""
}

// routes renders each route as name(target=weight,...), the weights users came to see.
func routes(m map[string]any, _ time.Time) string {
	var parts []string
	for _, r := range list(m, "spec.routes") {
		var targets []any
		for _, kind := range []string{"httpRoute", "http2Route", "grpcRoute", "tcpRoute"} {
			if t := list(r, kind+".action.weightedTargets"); t != nil {
				targets = t
			}
		}
		var ts []string
		for _, t := range targets {
			name := str(t, "virtualNodeRef.name")
			if name == "" {
				name = str(t, "virtualNodeARN")
			}
			ts = append(ts, fmt.Sprintf("%s=%s", name, orZero(str(t, "weight"))))
		}
		parts = append(parts, str(r, "name")+"("+strings.Join(ts, ",")+")")
	}
	return strings.Join(parts, " ")
}

func gatewayMatch(m map[string]any, _ time.Time) string {
	for _, kind := range []string{"httpRoute", "http2Route", "grpcRoute"} {
		r := get(m, "spec."+kind+".match")
		if r == nil {
			continue
		}
		var parts []string
		if h := str(r, "hostname.exact"); h != "" {
			parts = append(parts, "host="+h)
		}
		if h := str(r, "hostname.suffix"); h != "" {
			parts = append(parts, "host=*"+h)
		}
		if p := str(r, "prefix"); p != "" {
			parts = append(parts, "prefix="+p)
		}
		if p := str(r, "path.exact"); p != "" {
			parts = append(parts, "path="+p)
		}
		if s := str(r, "serviceName"); s != "" {
			parts = append(parts, "service="+s)
		}
		return strings.Join(parts, ",")
	}
	return ""
}

func gatewayTarget(m map[string]any, _ time.Time) string {
	for _, kind := range []string{"httpRoute", "http2Route", "grpcRoute"} {
		if n := str(m, "spec."+kind+".action.target.virtualService.virtualServiceRef.name"); n != "" {
			return n
		}
	}
	return ""
}

func init() {
	kindColumns["Proxy"] = []Column{
		{Header: "NODE", Cell: path("status.node")},
		{Header: "CONNECTED", Cell: path("status.connected")},
		{Header: "ACKED", Cell: path("status.ackedVersion")},
		{Header: "SENT", Cell: path("status.sentVersion")},
		{Header: "NACK", Cell: func(m map[string]any, _ time.Time) string {
			if v := str(m, "status.nackVersion"); v != "" {
				return v + ": " + str(m, "status.lastNack")
			}
			return ""
		}},
		{Header: "ADDRESS", Wide: true, Cell: path("status.address")},
	}
}
