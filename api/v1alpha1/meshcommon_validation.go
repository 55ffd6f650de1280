package v1alpha1

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation of the pieces the mesh kinds share. Every check appends to an ErrorList and
// carries on, so one pass reports every problem. Nothing here looks at other objects.

// maxAWSNameLen is App Mesh's limit on resource names.
const maxAWSNameLen = 255

// checkExactlyOne reports at p unless exactly one of the named members is set.
func checkExactlyOne(errs *ErrorList, p *field.Path, names []string, set ...bool) {
	found := setNames(names, set)
	switch {
	case len(found) == 0:
		*errs = append(*errs, Invalid(p, "exactly one of %s is required", strings.Join(names, ", ")))
	case len(found) > 1:
		*errs = append(*errs, Invalid(p, "only one of %s may be set, found %s", strings.Join(names, ", "), strings.Join(found, " and ")))
	}
}

// checkAtMostOne reports at p when more than one of the named members is set.
func checkAtMostOne(errs *ErrorList, p *field.Path, names []string, set ...bool) {
	if found := setNames(names, set); len(found) > 1 {
		*errs = append(*errs, Invalid(p, "only one of %s may be set, found %s", strings.Join(names, ", "), strings.Join(found, " and ")))
	}
}

func setNames(names []string, set []bool) []string {
	var found []string
	for i, s := range set {
		if s {
			found = append(found, names[i])
		}
	}
	return found
}

// checkRequiredString reports an empty s as missing and one longer than max characters.
func checkRequiredString(errs *ErrorList, p *field.Path, s string, max int) {
	if s == "" {
		*errs = append(*errs, Required(p))
		return
	}
	checkMaxLength(errs, p, s, max)
}

// checkOptionalString accepts nil, and otherwise wants 1 to max characters.
func checkOptionalString(errs *ErrorList, p *field.Path, s *string, max int) {
	if s == nil {
		return
	}
	checkNonEmpty(errs, p, s)
	checkMaxLength(errs, p, *s, max)
}

// checkNonEmpty reports a set but empty string.
func checkNonEmpty(errs *ErrorList, p *field.Path, s *string) {
	if s != nil && *s == "" {
		*errs = append(*errs, Invalid(p, "must not be empty"))
	}
}

func checkMaxLength(errs *ErrorList, p *field.Path, s string, max int) {
	if n := utf8.RuneCountInString(s); n > max {
		*errs = append(*errs, Invalid(p, "has %d characters, at most %d allowed", n, max))
	}
}

// checkRegexp reports a pattern Go's regexp package (RE2 syntax, which the proxy uses to
// match) cannot compile.
func checkRegexp(errs *ErrorList, p *field.Path, pattern string) {
	if _, err := regexp.Compile(pattern); err != nil {
		*errs = append(*errs, Invalid(p, "%q is not a valid regular expression (Go RE2 syntax): %v", pattern, err))
	}
}

// checkLabelSelector reports a selector that does not parse.
func checkLabelSelector(errs *ErrorList, p *field.Path, s *metav1.LabelSelector) {
	if s == nil {
		return
	}
	if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
		*errs = append(*errs, Invalid(p, "%v", err))
	}
}

// checkAWSName accepts an unset or empty awsName (Default fills it) and caps its length.
func checkAWSName(errs *ErrorList, p *field.Path, name *string) {
	if name != nil {
		checkMaxLength(errs, p, *name, maxAWSNameLen)
	}
}

// checkRefName wants the name of a referenced object. Whether that object exists is not
// checked: apply order must not matter.
func checkRefName(errs *ErrorList, p *field.Path, name string) {
	if name == "" {
		*errs = append(*errs, Required(p.Child("name")))
	}
}

// checkPort wants a TCP port number.
func checkPort(errs *ErrorList, p *field.Path, port PortNumber) {
	checkRange(errs, p, int64(port), 1, 65535)
}

func checkOptionalPort(errs *ErrorList, p *field.Path, port *PortNumber) {
	if port != nil {
		checkPort(errs, p, *port)
	}
}

// checkPriority wants a route priority in App Mesh's range, 0 (first) to 1000.
func checkPriority(errs *ErrorList, p *field.Path, priority *int64) {
	if priority != nil {
		checkRange(errs, p, *priority, minPriority, maxPriority)
	}
}

func (d *Duration) validate(errs *ErrorList, p *field.Path) {
	if d.Unit == "" {
		*errs = append(*errs, Required(p.Child("unit")))
	} else {
		checkOneOf(errs, p.Child("unit"), string(d.Unit), string(DurationUnitMS), string(DurationUnitS))
	}
	checkRange(errs, p.Child("value"), d.Value, 0, math.MaxInt64)
}

func (d *Duration) validateOptional(errs *ErrorList, p *field.Path) {
	if d != nil {
		d.validate(errs, p)
	}
}

// validateRequired reports a zero Duration as missing, for fields App Mesh requires.
func (d *Duration) validateRequired(errs *ErrorList, p *field.Path) {
	if *d == (Duration{}) {
		*errs = append(*errs, Required(p))
		return
	}
	d.validate(errs, p)
}

// validate checks a port mapping whose protocol must be one of protocols.
func (m *PortMapping) validate(errs *ErrorList, p *field.Path, protocols []string) {
	checkPort(errs, p.Child("port"), m.Port)
	checkProtocol(errs, p.Child("protocol"), string(m.Protocol), protocols)
}

func checkProtocol(errs *ErrorList, p *field.Path, protocol string, protocols []string) {
	if protocol == "" {
		*errs = append(*errs, Required(p))
		return
	}
	checkOneOf(errs, p, protocol, protocols...)
}

// validate checks a health check whose protocol must be one of protocols.
func (h *HealthCheckPolicy) validate(errs *ErrorList, p *field.Path, protocols []string) {
	checkRange(errs, p.Child("healthyThreshold"), h.HealthyThreshold, healthThresholdMin, healthThresholdMax)
	checkRange(errs, p.Child("unhealthyThreshold"), h.UnhealthyThreshold, healthThresholdMin, healthThresholdMax)
	checkRange(errs, p.Child("intervalMillis"), h.IntervalMillis, healthIntervalMin, healthIntervalMax)
	checkRange(errs, p.Child("timeoutMillis"), h.TimeoutMillis, healthTimeoutMin, healthTimeoutMax)
	checkProtocol(errs, p.Child("protocol"), string(h.Protocol), protocols)
	checkOptionalPort(errs, p.Child("port"), h.Port)
	checkNonEmpty(errs, p.Child("path"), h.Path)
}

func (t *HTTPTimeout) validate(errs *ErrorList, p *field.Path) {
	if t != nil {
		t.PerRequest.validateOptional(errs, p.Child("perRequest"))
		t.Idle.validateOptional(errs, p.Child("idle"))
	}
}

func (t *GRPCTimeout) validate(errs *ErrorList, p *field.Path) {
	if t != nil {
		t.PerRequest.validateOptional(errs, p.Child("perRequest"))
		t.Idle.validateOptional(errs, p.Child("idle"))
	}
}

func (t *TCPTimeout) validate(errs *ErrorList, p *field.Path) {
	if t != nil {
		t.Idle.validateOptional(errs, p.Child("idle"))
	}
}

func (c *TCPConnectionPool) validate(errs *ErrorList, p *field.Path) {
	if c != nil {
		checkRange(errs, p.Child("maxConnections"), c.MaxConnections, 1, math.MaxInt64)
	}
}

func (c *HTTPConnectionPool) validate(errs *ErrorList, p *field.Path) {
	if c == nil {
		return
	}
	checkRange(errs, p.Child("maxConnections"), c.MaxConnections, 1, math.MaxInt64)
	if c.MaxPendingRequests != nil {
		checkRange(errs, p.Child("maxPendingRequests"), *c.MaxPendingRequests, 1, math.MaxInt64)
	}
}

func (c *HTTP2ConnectionPool) validate(errs *ErrorList, p *field.Path) {
	if c != nil {
		checkRange(errs, p.Child("maxRequests"), c.MaxRequests, 1, math.MaxInt64)
	}
}

func (c *GRPCConnectionPool) validate(errs *ErrorList, p *field.Path) {
	if c != nil {
		checkRange(errs, p.Child("maxRequests"), c.MaxRequests, 1, math.MaxInt64)
	}
}

// checkMemberProtocol reports a per-protocol member (a connection pool, a timeout) whose
// protocol differs from the listener's: only the listener's own protocol applies, so any
// other would be silently ignored.
func checkMemberProtocol(errs *ErrorList, p *field.Path, listener PortProtocol, protos []PortProtocol, set ...bool) {
	for i, proto := range protos {
		if set[i] && listener != "" && proto != listener {
			*errs = append(*errs, Invalid(p.Child(string(proto)), "does not match the listener's protocol %q", listener))
		}
	}
}

// Access log limits (App Mesh).
const (
	maxLogPathLen     = 255
	maxLogTextLen     = 1000
	maxLogJSONPartLen = 100
)

func (l *Logging) validate(errs *ErrorList, p *field.Path) {
	if l == nil || l.AccessLog == nil || l.AccessLog.File == nil {
		return
	}
	fp := p.Child("accessLog", "file")
	f := l.AccessLog.File
	checkRequiredString(errs, fp.Child("path"), f.Path, maxLogPathLen)
	if f.Format == nil {
		return
	}
	format := fp.Child("format")
	checkExactlyOne(errs, format, []string{"json", "text"}, len(f.Format.JSON) > 0, f.Format.Text != nil)
	checkOptionalString(errs, format.Child("text"), f.Format.Text, maxLogTextLen)
	keys := map[string]bool{}
	for i, kv := range f.Format.JSON {
		jp := format.Child("json").Index(i)
		checkRequiredString(errs, jp.Child("key"), kv.Key, maxLogJSONPartLen)
		checkRequiredString(errs, jp.Child("value"), kv.Value, maxLogJSONPartLen)
		if keys[kv.Key] && kv.Key != "" {
			*errs = append(*errs, Invalid(jp.Child("key"), "%q is used twice", kv.Key))
		}
		keys[kv.Key] = true
	}
}

// refKey names a reference for duplicate checks, resolving an empty namespace to the
// referring object's.
func refKey(namespace *string, name, defaultNamespace string) string {
	ns := defaultNamespace
	if namespace != nil && *namespace != "" {
		ns = *namespace
	}
	return fmt.Sprintf("%s/%s", ns, name)
}
