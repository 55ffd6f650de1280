package prometheus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarymesh/canarymesh/internal/metrics"
)

// DefaultTimeout bounds one query when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options say how to reach a Prometheus server.
type Options struct {
	// Address is the server's base URL (http://prometheus.monitoring:9090).
	Address string
	// Username and Password, when Username is set, are sent as basic auth.
	Username, Password string
	// Token, when set, is sent as a bearer token.
	Token string
	// Headers are added to every request.
	Headers http.Header
	// InsecureSkipVerify skips verification of the server's certificate.
	InsecureSkipVerify bool
	// Timeout bounds one query (default DefaultTimeout).
	Timeout time.Duration
}

// Provider runs PromQL queries against one Prometheus server.
type Provider struct {
	address string
	api     promv1.API
	timeout time.Duration
	now     func() time.Time
}

var _ metrics.Provider = (*Provider)(nil)

// New returns a provider for the server at o.Address.
func New(o Options) (*Provider, error) {
	if o.Address == "" {
		return nil, errors.New("prometheus: no address")
	}
	if o.Username != "" && o.Token != "" {
		return nil, errors.New("prometheus: both basic auth (username) and a bearer token are set; use one")
	}
	tr := transports.secure
	if o.InsecureSkipVerify {
		tr = transports.insecure
	}
	c, err := api.NewClient(api.Config{Address: o.Address, RoundTripper: &authTransport{next: tr, o: o}})
	if err != nil {
		return nil, fmt.Errorf("prometheus at %s: %w", o.Address, err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Provider{address: o.Address, api: promv1.NewAPI(c), timeout: timeout, now: time.Now}, nil
}

// WithCredentials fills the options' credentials from a Secret's data: username and
// password (basic auth) or token (bearer), as Flagger reads them.
func (o Options) WithCredentials(data map[string][]byte) (Options, error) {
	user, pass, tok := data[metrics.SecretUsername], data[metrics.SecretPassword], data[metrics.SecretToken]
	switch {
	case len(user) > 0 && len(tok) > 0:
		return o, errors.New("the secret holds both username and token; keep one")
	case len(user) > 0:
		if len(pass) == 0 {
			return o, errors.New("the secret has a username but no password")
		}
		o.Username, o.Password = string(user), string(pass)
	case len(tok) > 0:
		o.Token = strings.TrimSpace(string(tok))
	default:
		return o, fmt.Errorf("the secret holds neither %s/%s nor %s", metrics.SecretUsername, metrics.SecretPassword, metrics.SecretToken)
	}
	return o, nil
}

// Query runs an instant query now and returns its single sample. No series (or a NaN
// value) is metrics.ErrNoData; several series are an error naming them.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, query, p.now())
	if err != nil {
		var perr *promv1.Error
		if errors.As(err, &perr) {
			return 0, fmt.Errorf("prometheus at %s refused the query: %s: %s", p.address, perr.Type, perr.Msg)
		}
		return 0, fmt.Errorf("prometheus at %s: %w", p.address, err)
	}
	return sample(v)
}

// sample reduces a query result to one number.
func sample(v model.Value) (float64, error) {
	var f float64
	switch r := v.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, metrics.ErrNoData
		case 1:
			f = float64(r[0].Value)
		default:
			return 0, fmt.Errorf("the query returned %d series, want one (aggregate it, e.g. with sum): %s", len(r), seriesNames(r))
		}
	case *model.Scalar:
		f = float64(r.Value)
	case model.Matrix:
		return 0, fmt.Errorf("the query returned a range vector of %d series, want one sample (use rate or an aggregation over the range)", len(r))
	default:
		return 0, fmt.Errorf("the query returned a %s, want a number", v.Type())
	}
	if math.IsNaN(f) {
		// 0/0: no requests in the window.
		return 0, metrics.ErrNoData
	}
	return f, nil
}

// seriesNames lists up to five series of a vector.
func seriesNames(v model.Vector) string {
	names := make([]string, 0, len(v))
	for _, s := range v {
		names = append(names, s.Metric.String())
	}
	sort.Strings(names)
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(v)-5))
	}
	return strings.Join(names, ", ")
}

// authTransport adds the credentials and headers to every request.
type authTransport struct {
	next http.RoundTripper
	o    Options
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range a.o.Headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	switch {
	case a.o.Username != "":
		r.SetBasicAuth(a.o.Username, a.o.Password)
	case a.o.Token != "":
		r.Header.Set("Authorization", "Bearer "+a.o.Token)
	}
	return a.next.RoundTrip(r)
}

// transports are shared by every provider, so that providers made for each check reuse
// connections instead of leaving idle ones behind; credentials are added per request.
var transports = func() (t struct{ secure, insecure *http.Transport }) {
	t.secure = http.DefaultTransport.(*http.Transport).Clone()
	t.insecure = http.DefaultTransport.(*http.Transport).Clone()
	t.insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the template
	return t
}()
