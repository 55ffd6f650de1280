package proxy

import (
	"strings"
	"sync/atomic"
)

// maxSchedule bounds the precomputed weighted schedule. App Mesh weights are 0–100 with at
// most 10 targets, so real schedules are at most 1,000 entries after dividing by the GCD.
const maxSchedule = 10000

// target is one weighted destination of a route.
type target struct {
	cluster  string // the snapshot cluster's Name
	weight   int
	key      upstreamKey
	statsKey routeKey
	up       *upstream   // linked when the snapshot is applied
	stats    *routeStats // linked when the snapshot is applied
	// setCookies are added to every response the target serves (session affinity);
	// cookieLines are the same as "Set-Cookie: ...\r\n" lines for the fast path.
	setCookies  []string
	cookieLines []byte
}

// weighted picks targets by smooth weighted round robin (nginx's algorithm). The sequence
// is computed once per snapshot, so a pick is one atomic add and an index: deterministic,
// lock-free and as evenly interleaved as nginx's (a 90/10 route sends exactly 9 of every 10
// requests to the first target, never 90 in a row).
type weighted struct {
	targets  []*target
	schedule []uint16
	next     atomic.Uint64
}

func newWeighted(targets []*target) *weighted {
	w := &weighted{targets: targets}
	weights := make([]int, len(targets))
	for i, t := range targets {
		weights[i] = max(t.weight, 0)
	}
	w.schedule = smoothSchedule(weights)
	return w
}

// pick returns the next target, or nil when every weight is zero.
func (w *weighted) pick() *target {
	n := len(w.schedule)
	if n == 0 {
		return nil
	}
	if n == 1 {
		return w.targets[w.schedule[0]]
	}
	i := w.next.Add(1) - 1
	return w.targets[w.schedule[i%uint64(n)]]
}

// smoothSchedule runs nginx's smooth weighted round robin over one full period.
func smoothSchedule(weights []int) []uint16 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	if g == 0 {
		return nil
	}
	total := 0
	scaled := make([]int, len(weights))
	for i, w := range weights {
		scaled[i] = w / g
		total += scaled[i]
	}
	if total > maxSchedule { // keep proportions to within 1/maxSchedule
		sum := total * g
		total = 0
		for i, w := range weights {
			scaled[i] = w * maxSchedule / sum
			if w > 0 && scaled[i] == 0 {
				scaled[i] = 1
			}
			total += scaled[i]
		}
	}
	current := make([]int, len(scaled))
	out := make([]uint16, total)
	for k := range out {
		best := -1
		for i, w := range scaled {
			if w == 0 {
				continue
			}
			current[i] += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out[k] = uint16(best)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// hostTable finds the virtual host for a Host header the way Envoy does: an exact domain
// first, then the longest "*.suffix" wildcard, then the longest "prefix.*", then "*".
type hostTable struct {
	exact    map[string]*vhost
	suffixes []wildHost // longest first
	prefixes []wildHost // longest first
	any      *vhost
	list     []*vhost // in snapshot order, internal ones included
	byName   map[string]*vhost
}

type wildHost struct {
	s  string
	vh *vhost
}

// lookup finds the virtual host for host (port already stripped). It allocates only when
// the host has upper-case letters, which clients rarely send.
func (t *hostTable) lookup(host string) *vhost {
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	if hasUpper(host) {
		host = strings.ToLower(host)
		if vh, ok := t.exact[host]; ok {
			return vh
		}
	}
	for _, w := range t.suffixes {
		if len(host) > len(w.s) && strings.HasSuffix(host, w.s) {
			return w.vh
		}
	}
	for _, w := range t.prefixes {
		if len(host) > len(w.s) && strings.HasPrefix(host, w.s) {
			return w.vh
		}
	}
	return t.any
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// splitHostPort splits a Host header into host and port without allocating; port is 0
// when absent or not a number.
func splitHostPort(hostport string) (string, int) {
	if hostport == "" {
		return "", 0
	}
	if hostport[0] == '[' { // [v6]:port
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, 0
		}
		host := hostport[1:end]
		if end+1 < len(hostport) && hostport[end+1] == ':' {
			p, _ := parseInt(hostport[end+2:])
			return host, int(p)
		}
		return host, 0
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.IndexByte(hostport[:i], ':') >= 0 { // no port, or a bare v6 address
		return hostport, 0
	}
	p, ok := parseInt(hostport[i+1:])
	if !ok || p <= 0 || p > 65535 {
		return hostport[:i], 0
	}
	return hostport[:i], int(p)
}

// selectRoute finds the first route of the host table that matches r: no virtual host or
// no route is nil (404 NR, as Envoy answers).
func (t *hostTable) selectRoute(r *request) (*vhost, *route) {
	vh := t.lookup(r.host)
	if vh == nil {
		return nil, nil
	}
	return vh, vh.selectRoute(r)
}

func (vh *vhost) selectRoute(r *request) *route {
	for _, rt := range vh.routes {
		if rt.match.match(r) {
			return rt
		}
	}
	return nil
}
