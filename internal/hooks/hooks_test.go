package hooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// recorder is a real HTTP server that keeps what it received and answers with codes in turn.
type recorder struct {
	srv    *httptest.Server
	bodies chan []byte
	paths  chan string
	codes  []int
	calls  atomic.Int32
	delay  time.Duration
}

func newRecorder(t *testing.T, codes ...int) *recorder {
	r := &recorder{bodies: make(chan []byte, 16), paths: make(chan string, 16), codes: codes}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := int(r.calls.Add(1)) - 1
		b, _ := io.ReadAll(req.Body)
		r.bodies <- b
		r.paths <- req.URL.Path
		time.Sleep(r.delay)
		code := http.StatusOK
		if n < len(r.codes) {
			code = r.codes[n]
		} else if len(r.codes) > 0 {
			code = r.codes[len(r.codes)-1]
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "answer "+http.StatusText(code))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func canary() *v1alpha1.Canary {
	c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo"}}
	c.Status.Phase = v1alpha1.CanaryPhaseProgressing
	c.Status.LastAppliedSpec = "abc123"
	return c
}

func TestWebhookPayloadAndPass(t *testing.T) {
	r := newRecorder(t, 200)
	c := &Caller{}
	res := c.Call(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "load-test", URL: r.srv.URL, Metadata: map[string]string{"cmd": "hey -z 1m http://x/"}})
	if !res.OK || res.StatusCode != 200 || res.Type != "rollout" || res.Attempts != 1 {
		t.Fatalf("result %+v", res)
	}
	var p Payload
	if err := json.Unmarshal(<-r.bodies, &p); err != nil {
		t.Fatal(err)
	}
	if p.Name != "podinfo" || p.Namespace != "demo" || p.Phase != "Progressing" || p.Checksum != "abc123" || p.Metadata["cmd"] != "hey -z 1m http://x/" {
		t.Errorf("payload %+v", p)
	}
}

func TestWebhookFailureRetriesAndTimeout(t *testing.T) {
	r := newRecorder(t, 500, 503, 200)
	c := &Caller{RetryDelay: time.Millisecond}
	res := c.Call(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "gate", URL: r.srv.URL, Retries: 2})
	if !res.OK || res.Attempts != 3 {
		t.Errorf("with 2 retries: %+v", res)
	}
	r2 := newRecorder(t, 403)
	res = c.Call(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "gate", URL: r2.srv.URL})
	if res.OK || res.StatusCode != 403 || !strings.Contains(res.Message, "answer Forbidden") {
		t.Errorf("403: %+v", res)
	}
	slow := newRecorder(t, 200)
	slow.delay = 300 * time.Millisecond
	res = c.Call(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "slow", URL: slow.srv.URL, Timeout: "20ms"})
	if res.OK || !strings.Contains(res.Message, "deadline") {
		t.Errorf("timeout: %+v", res)
	}
	res = c.Call(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "down", URL: "http://127.0.0.1:1/"})
	if res.OK || res.Message == "" {
		t.Errorf("unreachable: %+v", res)
	}
	// Status and events name the hook before its message: the message must not again.
	if strings.Contains(res.Message, "webhook down") {
		t.Errorf("unreachable: the message repeats the hook's name: %q", res.Message)
	}
}

func TestEventWebhookMetadata(t *testing.T) {
	r := newRecorder(t, 200)
	c := &Caller{Now: func() time.Time { return time.UnixMilli(1700000000123) }}
	res := c.CallEvent(context.Background(), canary(), v1alpha1.CanaryWebhook{Name: "ev", URL: r.srv.URL, Type: v1alpha1.WebhookEvent,
		Metadata: map[string]string{"team": "web", "eventType": "overridden?"}}, "Advance podinfo.demo canary weight 10", "Normal")
	if !res.OK {
		t.Fatal(res)
	}
	var p Payload
	_ = json.Unmarshal(<-r.bodies, &p)
	want := map[string]string{"eventMessage": "Advance podinfo.demo canary weight 10", "eventType": "Normal", "timestamp": "1700000000123", "team": "web"}
	for k, v := range want {
		if p.Metadata[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, p.Metadata[k], v)
		}
	}
}

func provider(typ, addr string) *v1alpha1.AlertProvider {
	return &v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Name: "on-call", Namespace: "demo"},
		Spec: v1alpha1.AlertProviderSpec{Type: typ, Address: addr, Channel: "releases", Username: "flagger"}}
}

var alert = Alert{Workload: "podinfo", Namespace: "demo", Message: "Canary analysis failed", Severity: "error",
	Fields: []Field{{Name: "Target", Value: "Workload/podinfo.demo"}}}

// Each service gets its own real payload shape.
func TestAlertPayloads(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		typ, path string
		check     func(t *testing.T, m map[string]any)
	}{
		{"slack", "/hook", func(t *testing.T, m map[string]any) {
			a := m["attachments"].([]any)[0].(map[string]any)
			if m["channel"] != "releases" || m["username"] != "flagger" || a["color"] != "danger" || a["author_name"] != "podinfo.demo" ||
				a["text"] != "Canary analysis failed" || a["fields"].([]any)[0].(map[string]any)["title"] != "Target" {
				t.Errorf("slack payload %v", m)
			}
		}},
		{"discord", "/hook/slack", func(t *testing.T, m map[string]any) {
			if m["attachments"] == nil {
				t.Errorf("discord payload %v", m)
			}
		}},
		{"msteams", "/hook", func(t *testing.T, m map[string]any) {
			s := m["sections"].([]any)[0].(map[string]any)
			if m["@type"] != "MessageCard" || m["themeColor"] != "FF0000" || s["activityTitle"] != "Canary analysis failed" ||
				s["facts"].([]any)[0].(map[string]any)["value"] != "Workload/podinfo.demo" {
				t.Errorf("teams payload %v", m)
			}
		}},
		{"gchat", "/hook", func(t *testing.T, m map[string]any) {
			if m["cards"] == nil {
				t.Errorf("gchat payload %v", m)
			}
		}},
		{"generic", "/hook", func(t *testing.T, m map[string]any) {
			md := m["metadata"].(map[string]any)
			if m["name"] != "podinfo" || md["eventMessage"] != "Canary analysis failed" || md["Target"] != "Workload/podinfo.demo" {
				t.Errorf("generic payload %v", m)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.typ, func(t *testing.T) {
			r := newRecorder(t, 200)
			n, err := NewNotifier(ctx, provider(c.typ, r.srv.URL+"/hook"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Post(ctx, alert); err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(<-r.bodies, &m); err != nil {
				t.Fatal(err)
			}
			if p := <-r.paths; p != c.path {
				t.Errorf("posted to %s, want %s", p, c.path)
			}
			c.check(t, m)
		})
	}
}

func TestNotifierErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := NewNotifier(ctx, provider("pager", "http://x/"), nil); err == nil || !strings.Contains(err.Error(), "slack") {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := NewNotifier(ctx, provider("slack", "not a url"), nil); err == nil {
		t.Error("bad address accepted")
	}
	p := provider("slack", "")
	p.Spec.SecretRef = &v1alpha1.SecretReference{Name: "slack-url"}
	r := newRecorder(t, 500)
	n, err := NewNotifier(ctx, p, func(_ context.Context, ns, name string) (map[string]string, error) {
		if ns != "demo" || name != "slack-url" {
			t.Errorf("lookup %s/%s", ns, name)
		}
		return map[string]string{"address": r.srv.URL}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Post(ctx, alert); err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Errorf("a 500 from the service: %v", err)
	}
}
