package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	shellquote "github.com/kballard/go-shellquote"
)

// Usage describes the flags ParseArgs accepts: hey's, then the open-model extension.
const Usage = `Usage: [flags] URL

hey's flags:
  -n  Number of requests to run. Default 200. With -z and no -n, -z alone bounds
      the run (as hey); with both, whichever is reached first ends it.
  -c  Number of workers to run concurrently (in-flight bound with --rate). Default 50.
  -q  Rate limit, in queries per second (QPS) per worker. Default no limit.
  -z  Duration of application to send requests, e.g. 10s, 3m.
  -m  HTTP method: GET, POST, PUT, DELETE, HEAD, OPTIONS.
  -H  Custom HTTP header, repeatable: -H "Accept: text/html" -H "X-Id: 1".
  -t  Timeout for each request in seconds (or a duration). Default 20, 0 for none.
  -A  HTTP Accept header.
  -d  HTTP request body.
  -D  HTTP request body from a file.
  -T  Content-type. Default "text/html".
  -a  Basic authentication, username:password.
  -x  HTTP proxy address as host:port.
  -h2 Try HTTP/2 (over TLS).
  -host                HTTP Host header.
  -disable-compression Disable compression.
  -disable-keepalive   Disable keep-alive; a new TCP connection for every request.
  -disable-redirects   Do not follow redirects.
  -cpus                Accepted and ignored (the Go runtime uses every core).

Open model:
  --rate      Total requests per second, sent on schedule whatever the response times;
              latency counts from the scheduled time. -c bounds requests in flight.
  --progress  Interval of progress lines on stderr (default 5s, 0 to disable).
`

// ErrHelp is returned by ParseArgs when -h or -help was asked for.
var ErrHelp = flag.ErrHelp

// ParseHey parses a `hey ...` command line as written in a Flagger webhook's metadata.cmd,
// with the shell's quoting rules, into a Config.
func ParseHey(cmdline string) (Config, error) {
	words, err := shellquote.Split(cmdline)
	if err != nil {
		return Config{}, fmt.Errorf("%q: %w", cmdline, err)
	}
	if len(words) == 0 || path.Base(words[0]) != "hey" {
		return Config{}, fmt.Errorf("not a hey command: %q", cmdline)
	}
	cfg, _, err := ParseArgs(words[1:])
	return cfg, err
}

// IsHey reports whether a command line runs hey, the only command the load tester runs
// without a shell.
func IsHey(cmdline string) bool {
	words, err := shellquote.Split(cmdline)
	return err == nil && len(words) > 0 && path.Base(words[0]) == "hey"
}

// ParseArgs parses hey's flags and the URL. Flags take one dash or two, and `-z 1m` or
// `-z=1m`, as Go's flag package (and so hey) does. The progress interval (--progress) is
// returned apart because it is the caller's to print.
func ParseArgs(args []string) (Config, time.Duration, error) {
	var (
		cfg      Config
		headers  headerFlag
		timeout  = secondsFlag(DefaultTimeout)
		accept   string
		output   string
		cpus     int
		progress = DefaultProgressInterval
	)
	fs := flag.NewFlagSet("hey", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.IntVar(&cfg.Requests, "n", DefaultRequests, "")
	fs.IntVar(&cfg.Concurrency, "c", DefaultConcurrency, "")
	fs.Float64Var(&cfg.QPS, "q", 0, "")
	fs.DurationVar(&cfg.Duration, "z", 0, "")
	fs.StringVar(&output, "o", "", "")
	fs.StringVar(&cfg.Method, "m", http.MethodGet, "")
	fs.Var(&headers, "H", "")
	fs.Var(&timeout, "t", "")
	fs.StringVar(&accept, "A", "", "")
	fs.StringVar(&cfg.ContentType, "T", DefaultContentType, "")
	fs.StringVar(&cfg.BasicAuth, "a", "", "")
	fs.StringVar(&cfg.Proxy, "x", "", "")
	fs.BoolVar(&cfg.HTTP2, "h2", false, "")
	fs.StringVar(&cfg.Host, "host", "", "")
	fs.BoolVar(&cfg.DisableCompression, "disable-compression", false, "")
	fs.BoolVar(&cfg.DisableKeepAlive, "disable-keepalive", false, "")
	fs.BoolVar(&cfg.DisableRedirects, "disable-redirects", false, "")
	fs.IntVar(&cpus, "cpus", 0, "")
	fs.Float64Var(&cfg.Rate, "rate", 0, "")
	fs.DurationVar(&progress, "progress", progress, "")
	fs.Func("d", "", func(s string) error { cfg.Body = []byte(s); return nil })
	fs.StringVar(&cfg.BodyFile, "D", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, 0, err
		}
		return Config{}, 0, fmt.Errorf("hey: %w", err)
	}
	switch fs.NArg() {
	case 0:
		return Config{}, 0, errors.New("hey: no URL given")
	case 1:
		cfg.URL = fs.Arg(0)
	default:
		return Config{}, 0, fmt.Errorf("hey: unexpected argument %q after the URL %q (flags go before the URL)", fs.Arg(1), fs.Arg(0))
	}
	if output != "" {
		return Config{}, 0, fmt.Errorf("hey: -o %s: only the summary output is supported", output)
	}
	cfg.Header = http.Header(headers)
	if accept != "" {
		if cfg.Header == nil {
			cfg.Header = http.Header{}
		}
		cfg.Header.Set("Accept", accept)
	}
	cfg.Timeout = time.Duration(timeout)
	if cfg.Timeout == 0 {
		cfg.Timeout = -1 // hey's -t 0: no timeout
	}
	if cfg.Duration > 0 && !flagSet(fs, "n") {
		cfg.Requests = 0 // hey: -z alone runs for its whole duration
	}
	if _, err := cfg.withDefaults(); err != nil {
		return Config{}, 0, fmt.Errorf("hey: %w", err)
	}
	return cfg, progress, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// headerRE is hey's rule for -H values.
var headerRE = regexp.MustCompile(`^([\w-]+):\s*(.+)`)

// headerFlag collects repeated -H "Name: value" flags.
type headerFlag http.Header

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(v string) error {
	m := headerRE.FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("%q: want \"Name: value\"", v)
	}
	if *h == nil {
		*h = headerFlag{}
	}
	http.Header(*h).Add(m[1], strings.TrimSpace(m[2]))
	return nil
}

// secondsFlag is hey's -t: whole seconds, and, for convenience, a Go duration.
type secondsFlag time.Duration

func (s *secondsFlag) String() string { return time.Duration(*s).String() }

func (s *secondsFlag) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return errors.New("must not be negative")
		}
		*s = secondsFlag(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want seconds, e.g. 20, or a duration, e.g. 500ms")
	}
	*s = secondsFlag(d)
	return nil
}
