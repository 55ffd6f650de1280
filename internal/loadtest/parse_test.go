package loadtest

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// heyCases are hey command lines as Flagger users write them, and what they mean.
var heyCases = []struct {
	name string
	cmd  string
	want Config
}{
	{
		name: "the seed's rollout hook",
		cmd:  "hey -z 1m -q 10 -c 2 http://podinfo-canary.demo:9898/",
		want: Config{URL: "http://podinfo-canary.demo:9898/", Duration: time.Minute, QPS: 10, Concurrency: 2},
	},
	{
		name: "hey's defaults",
		cmd:  "hey http://a/",
		want: Config{URL: "http://a/", Requests: 200, Concurrency: 50},
	},
	{
		name: "quoted headers and body",
		cmd:  `hey -n 100 -c 10 -m post -H 'Content-Type: application/json' -H "X-Api-Key:  a b" -d '{"a": 1}' http://a/token`,
		want: Config{
			URL: "http://a/token", Method: "post", Requests: 100, Concurrency: 10,
			Header: http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"a b"}},
			Body:   []byte(`{"a": 1}`),
		},
	},
	{
		name: "repeated header and Accept",
		cmd:  `hey -n 2 -c 1 -H "X-Id: 1" -H "X-Id: 2" -A text/plain http://a/`,
		want: Config{
			URL: "http://a/", Requests: 2, Concurrency: 1,
			Header: http.Header{"X-Id": {"1", "2"}, "Accept": {"text/plain"}},
		},
	},
	{
		name: "-z with -n keeps both bounds",
		cmd:  "hey -z=30s -n 500 http://a/",
		want: Config{URL: "http://a/", Duration: 30 * time.Second, Requests: 500, Concurrency: 50},
	},
	{
		name: "switches, host, type, timeout in seconds",
		cmd:  "hey -n 50 -disable-keepalive -disable-compression -disable-redirects -h2 -host podinfo.test -T application/json -t 5 -a u:p -cpus 2 https://a/",
		want: Config{
			URL: "https://a/", Requests: 50, Concurrency: 50, DisableKeepAlive: true,
			DisableCompression: true, DisableRedirects: true, HTTP2: true, Host: "podinfo.test",
			ContentType: "application/json", Timeout: 5 * time.Second, BasicAuth: "u:p",
		},
	},
	{
		name: "-t 0 is no timeout, as hey",
		cmd:  "hey -t 0 http://a/",
		want: Config{URL: "http://a/", Requests: 200, Concurrency: 50, Timeout: -1},
	},
	{
		name: "-t as a duration",
		cmd:  "hey -t 500ms http://a/",
		want: Config{URL: "http://a/", Requests: 200, Concurrency: 50, Timeout: 500 * time.Millisecond},
	},
	{
		name: "open model, two dashes",
		cmd:  "hey --rate 100 -z 10s -c 20 http://a/",
		want: Config{URL: "http://a/", Rate: 100, Duration: 10 * time.Second, Concurrency: 20},
	},
	{
		name: "a path to hey",
		cmd:  "/usr/local/bin/hey -n 5 -c 1 http://a/",
		want: Config{URL: "http://a/", Requests: 5, Concurrency: 1},
	},
}

func TestParseHey(t *testing.T) {
	for _, tt := range heyCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHey(tt.cmd)
			if err != nil {
				t.Fatalf("ParseHey: %v", err)
			}
			want := tt.want
			if want.Method == "" {
				want.Method = "GET"
			}
			if want.ContentType == "" {
				want.ContentType = DefaultContentType
			}
			if want.Timeout == 0 {
				want.Timeout = DefaultTimeout
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseHey(%q)\n got %+v\nwant %+v", tt.cmd, got, want)
			}
		})
	}
}

func TestParseHeyErrors(t *testing.T) {
	tests := []struct {
		cmd, want string
	}{
		{"hey -zz 1m http://a/", "-zz"},
		{"hey -z abc http://a/", "-z"},
		{"hey -n ten http://a/", "-n"},
		{"hey -q fast http://a/", "-q"},
		{"hey -t soon http://a/", "-t"},
		{"hey -H nocolon http://a/", "-H"},
		{"hey -c 2", "no URL"},
		{"hey http://a/ extra", `unexpected argument "extra"`},
		{"wrk -t2 -c10 http://a/", "not a hey command"},
		{"", "not a hey command"},
		{`hey -H 'X: y http://a/`, "Unterminated"},
		{"hey -n 5 -c 10 http://a/", "-n 5 cannot be less than -c 10"},
		{"hey -q 5 --rate 10 http://a/", "-q (per worker) and --rate"},
		{"hey -o csv http://a/", "-o csv"},
		{"hey ftp://a/", "scheme must be http or https"},
		{"hey -c -1 http://a/", "-c -1"},
		{"hey -a user http://a/", "-a"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			_, err := ParseHey(tt.cmd)
			if err == nil {
				t.Fatalf("ParseHey(%q): no error", tt.cmd)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseHey(%q) = %q, want it to name %q", tt.cmd, err, tt.want)
			}
		})
	}
}

func TestParseArgsHelpAndProgress(t *testing.T) {
	if _, _, err := ParseArgs([]string{"-h"}); !errors.Is(err, ErrHelp) {
		t.Errorf("-h: err = %v, want ErrHelp", err)
	}
	_, every, err := ParseArgs([]string{"--progress", "2s", "http://a/"})
	if err != nil || every != 2*time.Second {
		t.Errorf("--progress 2s: got %v, %v", every, err)
	}
}

func TestIsHey(t *testing.T) {
	for cmd, want := range map[string]bool{
		"hey -z 1m http://a/":               true,
		"  hey http://a/":                   true,
		"/bin/hey http://a/":                true,
		"curl -s http://a/ | grep token":    false,
		"heyyou http://a/":                  false,
		`hey -H 'unterminated http://a/`:    false,
		"bash -c 'hey -n 1 -c 1 http://a/'": false,
	} {
		if got := IsHey(cmd); got != want {
			t.Errorf("IsHey(%q) = %v, want %v", cmd, got, want)
		}
	}
}
