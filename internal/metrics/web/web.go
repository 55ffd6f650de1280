package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/internal/metrics"
)

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody bounds the answer read.
const maxBody = 1 << 20

// Options say where to send the request.
type Options struct {
	// URL of the API.
	URL string
	// Headers are sent with every request.
	Headers http.Header
	// Token, when set, is sent as a bearer token; Username and Password as basic auth.
	Token, Username, Password string
	// InsecureSkipVerify skips verification of the server's certificate.
	InsecureSkipVerify bool
	// Timeout bounds one request (default DefaultTimeout).
	Timeout time.Duration
}

// Provider reads one number from an HTTP API.
type Provider struct {
	o      Options
	client *http.Client
}

var _ metrics.Provider = (*Provider)(nil)

// New returns a provider for o.URL.
func New(o Options) (*Provider, error) {
	if o.URL == "" {
		return nil, errors.New("web: no address")
	}
	tr := transports.secure
	if o.InsecureSkipVerify {
		tr = transports.insecure
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Provider{o: o, client: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// Request is what a web query asks for: a JSONPath, and for a POST the method and body.
type Request struct {
	JSONPath string `json:"jsonPath"`
	Method   string `json:"method,omitempty"`
	Body     string `json:"body,omitempty"`
}

// ParseQuery reads a rendered query: a YAML document with jsonPath (and method, body),
// else the whole query as a JSONPath for a GET.
func ParseQuery(q string) (Request, error) {
	var r Request
	if err := yaml.UnmarshalStrict([]byte(q), &r); err == nil && r.JSONPath != "" {
		r.Method = strings.ToUpper(r.Method)
		switch r.Method {
		case "":
			r.Method = http.MethodGet
			if r.Body != "" {
				r.Method = http.MethodPost
			}
		case http.MethodGet, http.MethodPost, http.MethodPut:
		default:
			return r, fmt.Errorf("method %q: want GET, POST or PUT", r.Method)
		}
		return r, nil
	}
	r = Request{JSONPath: strings.TrimSpace(q), Method: http.MethodGet}
	if r.JSONPath == "" {
		return r, errors.New("the query is empty: want a JSONPath such as {$.data.value}")
	}
	return r, nil
}

// Query sends the request the query describes and returns the number its JSONPath
// picks. A missing or null value is metrics.ErrNoData.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	rq, err := ParseQuery(query)
	if err != nil {
		return 0, err
	}
	jp := jsonpath.New("query")
	if err := jp.Parse(rq.JSONPath); err != nil {
		return 0, fmt.Errorf("jsonPath %q does not parse: %w", rq.JSONPath, err)
	}
	data, err := p.fetch(ctx, rq)
	if err != nil {
		return 0, err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return 0, fmt.Errorf("%s answered no JSON: %w", p.o.URL, err)
	}
	res, err := jp.FindResults(doc)
	if err != nil {
		if strings.Contains(err.Error(), "is not found") {
			return 0, fmt.Errorf("%s: %w (%v)", rq.JSONPath, metrics.ErrNoData, err)
		}
		return 0, fmt.Errorf("jsonPath %s: %w", rq.JSONPath, err)
	}
	var vals []any
	for _, r := range res {
		for _, v := range r {
			vals = append(vals, v.Interface())
		}
	}
	switch len(vals) {
	case 0:
		return 0, metrics.ErrNoData
	case 1:
	default:
		return 0, fmt.Errorf("jsonPath %s picked %d values, want one", rq.JSONPath, len(vals))
	}
	return number(rq.JSONPath, vals[0])
}

func (p *Provider) fetch(ctx context.Context, rq Request) ([]byte, error) {
	var body io.Reader
	if rq.Body != "" {
		body = strings.NewReader(rq.Body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.Method, p.o.URL, body)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	for k, vs := range p.o.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if rq.Body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case p.o.Username != "":
		req.SetBasicAuth(p.o.Username, p.o.Password)
	case p.o.Token != "":
		req.Header.Set("Authorization", "Bearer "+p.o.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("web: reading the answer of %s: %w", p.o.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s answered status %d: %.200s", rq.Method, p.o.URL, resp.StatusCode, bytes.TrimSpace(data))
	}
	return data, nil
}

// number converts a picked JSON value: a number, or a string holding one.
func number(path string, v any) (float64, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, metrics.ErrNoData
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, fmt.Errorf("jsonPath %s picked %q, not a number", path, x)
		}
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		return 0, fmt.Errorf("jsonPath %s picked a %T, not a number", path, v)
	}
	if math.IsNaN(f) {
		return 0, metrics.ErrNoData
	}
	return f, nil
}

// transports are shared by every provider, so that providers made for each check reuse
// connections instead of leaving idle ones behind; credentials are added per request.
var transports = func() (t struct{ secure, insecure *http.Transport }) {
	t.secure = http.DefaultTransport.(*http.Transport).Clone()
	t.insecure = http.DefaultTransport.(*http.Transport).Clone()
	t.insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the template
	return t
}()
