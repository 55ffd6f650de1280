package loadtest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults as hey's.
const (
	DefaultRequests    = 200
	DefaultConcurrency = 50
	DefaultTimeout     = 20 * time.Second
	DefaultContentType = "text/html"
	// DefaultProgressInterval is how often Progress is called when it is set.
	DefaultProgressInterval = 5 * time.Second
)

const userAgent = "canarymesh-loadtest"

// Config describes one load test. The zero value of a field means hey's default.
type Config struct {
	URL    string
	Method string // -m, default GET
	// Header holds -H values and -A (Accept). A "Host" entry sets the request's Host.
	Header      http.Header
	Body        []byte // -d
	BodyFile    string // -D, read when the run starts
	ContentType string // -T, default text/html as hey
	Host        string // -host
	BasicAuth   string // -a user:password
	Proxy       string // -x host:port

	// Requests (-n) bounds the number of requests; Duration (-z) bounds the time. hey
	// ignores -n when -z is given; here both may be set and the first bound reached wins.
	// With neither, Requests is 200.
	Requests int
	Duration time.Duration
	// Concurrency (-c) is the number of workers in the closed model, and the bound on
	// requests in flight in the open model. Default 50.
	Concurrency int
	// QPS (-q) is the rate limit of each worker, as hey's; 0 is unlimited.
	QPS float64
	// Rate (--rate) switches to the open model: this many requests per second in total,
	// independent of response times.
	Rate float64

	// Timeout (-t) of each request; 0 means 20s, negative means none (hey's -t 0).
	Timeout            time.Duration
	DisableKeepAlive   bool
	DisableCompression bool
	DisableRedirects   bool
	HTTP2              bool // -h2: try HTTP/2 over TLS

	// Progress, when set, is called every ProgressInterval (default 5s) while running.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a snapshot of a running test.
type Progress struct {
	Elapsed  time.Duration
	Requests int64 // completed, errors included
	Errors   int64
	RPS      float64 // completed requests per second so far
}

func (p Progress) String() string {
	return fmt.Sprintf("%s elapsed, %d requests, %.1f req/s, %d errors",
		p.Elapsed.Truncate(time.Second), p.Requests, p.RPS, p.Errors)
}

// withDefaults fills hey's defaults and checks the whole config, naming the flag at fault.
func (c Config) withDefaults() (Config, error) {
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	c.Method = strings.ToUpper(c.Method)
	if c.ContentType == "" {
		c.ContentType = DefaultContentType
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Requests == 0 && c.Duration == 0 {
		c.Requests = DefaultRequests
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("no URL given"))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL %q: %w", c.URL, err))
	} else if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("URL %q: scheme must be http or https", c.URL))
	} else if u.Host == "" {
		errs = append(errs, fmt.Errorf("URL %q: no host", c.URL))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("-c %d: must be positive", c.Concurrency))
	}
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("-n %d: must be positive", c.Requests))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("-z %s: must be positive", c.Duration))
	}
	if c.QPS < 0 {
		errs = append(errs, fmt.Errorf("-q %g: must be positive", c.QPS))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %g: must be positive", c.Rate))
	}
	if c.Rate > 0 && c.QPS > 0 {
		errs = append(errs, errors.New("-q (per worker) and --rate (total, open model) cannot be combined"))
	}
	// hey's rule: every worker must get at least one request. The open model does not
	// split -n among workers, so it has no such rule.
	if c.Rate == 0 && c.Duration == 0 && c.Requests > 0 && c.Requests < c.Concurrency {
		errs = append(errs, fmt.Errorf("-n %d cannot be less than -c %d", c.Requests, c.Concurrency))
	}
	if c.BasicAuth != "" && !strings.Contains(c.BasicAuth, ":") {
		errs = append(errs, fmt.Errorf("-a %q: want user:password", c.BasicAuth))
	}
	if len(c.Body) > 0 && c.BodyFile != "" {
		errs = append(errs, errors.New("-d and -D cannot be combined"))
	}
	return errors.Join(errs...)
}

// body returns the request body, reading -D's file.
func (c Config) body() ([]byte, error) {
	if c.BodyFile == "" {
		return c.Body, nil
	}
	b, err := os.ReadFile(c.BodyFile)
	if err != nil {
		return nil, fmt.Errorf("-D: %w", err)
	}
	return b, nil
}
