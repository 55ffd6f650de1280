package mesh

import (
	"fmt"
	"maps"
	"net"
	"sort"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// RevisionLabel is the endpoint label carrying the revision a workload instance runs.
const RevisionLabel = "canarymesh.dev/revision"

// clusterRef is a route's need of a virtual node's cluster. protocol and port stand in
// for the node's listener when it has none.
type clusterRef struct {
	node     *v1alpha1.VirtualNode
	key      string
	protocol string
	port     int
}

// addCluster adds the cluster of a virtual node unless it is there already.
func (c *compiler) addCluster(r clusterRef) {
	if _, have := c.clusters[r.key]; have {
		return
	}
	if c.shared == nil {
		c.clusters[r.key] = c.nodeCluster(r)
		return
	}
	bc := c.shared.cluster(c, r)
	c.problems = append(c.problems, bc.problems...)
	c.clusters[r.key] = bc.cluster
}

// nodeCluster is a virtual node as its callers see it: its endpoints, and the policies
// of its listener that callers apply.
func (c *compiler) nodeCluster(r clusterRef) snapshot.Cluster {
	vn := r.node
	cl := snapshot.Cluster{Name: r.key, Mesh: c.ix.meshOf["VirtualNode/"+r.key], Protocol: r.protocol, Port: r.port}
	if len(vn.Spec.Listeners) == 0 {
		if r.port == 0 {
			c.once(objectID("VirtualNode", vn.Namespace, vn.Name), "spec.listeners",
				"not set: callers know no port of the node, so only endpoints with their own port (workloads, static) are reached")
		}
	} else {
		l := &vn.Spec.Listeners[0]
		cl.Protocol = string(l.PortMapping.Protocol)
		cl.Port = int(l.PortMapping.Port)
		cl.OutlierDetection = outlierDetection(l.OutlierDetection)
		cl.ConnectionPool = connectionPool(l.ConnectionPool)
		cl.HealthCheck = healthCheck(l.HealthCheck)
		cl.Timeout = listenerTimeout(l.Timeout)
	}
	cl.Endpoints, cl.DNS = c.endpoints(vn, cl.Port)
	return cl
}

// localClusters are the clusters a virtual node's ingress listeners deliver to, one per
// listener: in standalone mode every endpoint of the node, beside a sidecar the one
// application on loopback.
func (c *compiler) localCluster(vn *v1alpha1.VirtualNode, i int) snapshot.Cluster {
	l := &vn.Spec.Listeners[i]
	p := int(l.PortMapping.Port)
	cl := snapshot.Cluster{Name: localClusterName(vn, i), Mesh: c.ix.meshOf["VirtualNode/"+key(vn.Namespace, vn.Name)],
		Protocol: string(l.PortMapping.Protocol), Port: p}
	if c.opts.Sidecar {
		cl.Endpoints = []snapshot.Endpoint{{Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), Ready: true}}
		return cl
	}
	cl.Endpoints, cl.DNS = c.endpoints(vn, p)
	return cl
}

// localClusterName is "local:NS/NAME" for the first listener, "local:NS/NAME:PORT" for
// any further one.
func localClusterName(vn *v1alpha1.VirtualNode, i int) string {
	n := snapshot.LocalClusterPrefix + key(vn.Namespace, vn.Name)
	if i > 0 {
		n += ":" + strconv.Itoa(int(vn.Spec.Listeners[i].PortMapping.Port))
	}
	return n
}

// endpoints are a node's workload instances, its static endpoints, and its DNS name for
// the proxy to resolve, sorted by address; an address listed twice is kept once. A node
// whose podSelector matches workloads is run by the standalone supervisor: its instances
// are all its endpoints, and the DNS name (which App Mesh requires with a listener, and
// which names the node's Kubernetes Service) is not resolved.
func (c *compiler) endpoints(vn *v1alpha1.VirtualNode, port int) ([]snapshot.Endpoint, *snapshot.DNSDiscovery) {
	id := objectID("VirtualNode", vn.Namespace, vn.Name)
	eps, supervised := c.workloadEndpoints(vn, id)
	var dns *snapshot.DNSDiscovery
	if sd := vn.Spec.ServiceDiscovery; sd != nil {
		for _, s := range sd.Static {
			eps = append(eps, snapshot.Endpoint{Address: net.JoinHostPort(s.Address, strconv.Itoa(int(s.Port))), Ready: true})
		}
		if d := sd.DNS; d != nil && !supervised {
			rt := v1alpha1.DNSResponseTypeLoadBalancer
			if d.ResponseType != nil && *d.ResponseType != "" {
				rt = *d.ResponseType
			}
			dns = &snapshot.DNSDiscovery{Hostname: d.Hostname, Port: port, ResponseType: rt}
		}
		if sd.AWSCloudMap != nil {
			c.once(id, "spec.serviceDiscovery.awsCloudMap", "AWS Cloud Map is not supported outside AWS; the node has no endpoints from it")
		}
	}
	sort.SliceStable(eps, func(i, j int) bool { return eps[i].Address < eps[j].Address })
	out := eps[:0]
	for i, e := range eps {
		if i > 0 && e.Address == eps[i-1].Address {
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, dns
}

// workloadEndpoints are the instances of the workloads in the node's namespace whose
// labels its podSelector matches (a nil selector matches none), and whether any
// workload matched at all.
func (c *compiler) workloadEndpoints(vn *v1alpha1.VirtualNode, id string) ([]snapshot.Endpoint, bool) {
	if vn.Spec.PodSelector == nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(vn.Spec.PodSelector)
	if err != nil {
		c.once(id, "spec.podSelector", "%v; no workload is matched", err)
		return nil, false
	}
	var eps []snapshot.Endpoint
	matched := false
	for _, w := range c.ix.workloads {
		if w.Namespace != vn.Namespace || !sel.Matches(labels.Set(w.Spec.Labels)) {
			continue
		}
		matched = true
		for _, inst := range w.Status.Instances {
			if inst.Port == 0 {
				continue
			}
			lbl := maps.Clone(w.Spec.Labels)
			if inst.Revision != "" {
				if lbl == nil {
					lbl = map[string]string{}
				}
				lbl[RevisionLabel] = inst.Revision
			}
			eps = append(eps, snapshot.Endpoint{
				Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(inst.Port))), Labels: lbl, Ready: inst.Ready,
			})
		}
	}
	return eps, matched
}

func (c *compiler) clusterList() []snapshot.Cluster {
	out := make([]snapshot.Cluster, 0, len(c.clusters))
	for _, k := range sortedKeys(c.clusters) {
		out = append(out, c.clusters[k])
	}
	return out
}

func outlierDetection(o *v1alpha1.OutlierDetection) *snapshot.OutlierDetection {
	if o == nil {
		return nil
	}
	return &snapshot.OutlierDetection{MaxServerErrors: int(o.MaxServerErrors), Interval: duration(&o.Interval),
		BaseEjectionDuration: duration(&o.BaseEjectionDuration), MaxEjectionPercent: int(o.MaxEjectionPercent)}
}

func connectionPool(p *v1alpha1.VirtualNodeConnectionPool) *snapshot.ConnectionPool {
	if p == nil {
		return nil
	}
	var out snapshot.ConnectionPool
	switch {
	case p.TCP != nil:
		out.MaxConnections = int(p.TCP.MaxConnections)
	case p.HTTP != nil:
		return httpPool(p.HTTP)
	case p.HTTP2 != nil:
		out.MaxRequests = int(p.HTTP2.MaxRequests)
	case p.GRPC != nil:
		out.MaxRequests = int(p.GRPC.MaxRequests)
	default:
		return nil
	}
	return &out
}

func httpPool(h *v1alpha1.HTTPConnectionPool) *snapshot.ConnectionPool {
	out := &snapshot.ConnectionPool{MaxConnections: int(h.MaxConnections)}
	if h.MaxPendingRequests != nil {
		out.MaxPendingRequests = int(*h.MaxPendingRequests)
	}
	return out
}

func healthCheck(h *v1alpha1.HealthCheckPolicy) *snapshot.HealthCheck {
	if h == nil {
		return nil
	}
	return &snapshot.HealthCheck{Protocol: string(h.Protocol), Path: deref(h.Path), Port: port(h.Port),
		Interval: time.Duration(h.IntervalMillis) * time.Millisecond, Timeout: time.Duration(h.TimeoutMillis) * time.Millisecond,
		HealthyThreshold: int(h.HealthyThreshold), UnhealthyThreshold: int(h.UnhealthyThreshold)}
}

// listenerTimeout takes whichever protocol's timeout the listener sets.
func listenerTimeout(t *v1alpha1.ListenerTimeout) *snapshot.Timeouts {
	switch {
	case t == nil:
		return nil
	case t.HTTP != nil:
		return httpTimeout(t.HTTP)
	case t.HTTP2 != nil:
		return httpTimeout(t.HTTP2)
	case t.GRPC != nil:
		return timeouts(t.GRPC.PerRequest, t.GRPC.Idle)
	case t.TCP != nil:
		return timeouts(nil, t.TCP.Idle)
	}
	return nil
}

// accessLog converts logging.accessLog.file.
func accessLog(l *v1alpha1.Logging) *snapshot.AccessLog {
	if l == nil || l.AccessLog == nil || l.AccessLog.File == nil {
		return nil
	}
	f := l.AccessLog.File
	out := &snapshot.AccessLog{Path: f.Path, Format: "text"}
	if f.Format == nil {
		return out
	}
	if len(f.Format.JSON) > 0 {
		out.Format = "json"
		out.Fields = map[string]string{}
		for _, kv := range f.Format.JSON {
			out.Fields[kv.Key] = kv.Value
		}
		return out
	}
	out.Pattern = deref(f.Format.Text)
	return out
}

func listenerName(kind snapshot.ListenerKind, port int) string {
	return fmt.Sprintf("%s-%d", kind, port)
}
