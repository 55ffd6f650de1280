package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/dashboard"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

const testToken = "s3cret-token"

// clock is a settable time for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real store, the real API and the dashboard in front of it.
type env struct {
	st    store.Store
	srv   *httptest.Server
	clock *clock
	dash  *dashboard.Dashboard
}

func newEnv(t *testing.T, o dashboard.Options) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	api := controlplane.NewServer(st, testToken, "test", log).Handler()
	apiSrv := httptest.NewServer(api)
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	o.Store, o.Token, o.APIURL, o.Now, o.Log = st, testToken, apiSrv.URL, c.now, log
	d, err := dashboard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	srv := httptest.NewServer(d.Handler(api))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		apiSrv.Close()
		cancel()
		_ = st.Close()
		<-done
	})
	return &env{st: st, srv: srv, clock: c, dash: d}
}

const canaryYAML = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: demo
spec:
  targetRef:
    apiVersion: canarymesh.dev/v1alpha1
    kind: Workload
    name: podinfo
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 5
    stepWeight: 10
    maxWeight: 50
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
      - name: request-duration
        thresholdRange:
          max: 500
`

func (e *env) createCanary(t *testing.T) *v1alpha1.Canary {
	t.Helper()
	res, err := manifest.Decode("canary.yaml", []byte(canaryYAML), manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.st.Create(context.Background(), res.Items[0].Object)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*v1alpha1.Canary)
}

// req sends a request; cookie and csrf say what to add.
func (e *env) req(t *testing.T, method, path, body string, cookie *http.Cookie, csrf bool, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	r, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	if csrf {
		r.Header.Set(dashboard.HeaderCSRF, "1")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp, m
}

func (e *env) login(t *testing.T) *http.Cookie {
	t.Helper()
	resp, body := e.req(t, http.MethodPost, "/ui/login", `{"token":"`+testToken+`"}`, nil, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %v", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func wantRefusal(t *testing.T, what string, resp *http.Response, body map[string]any, code int, reason, msgPart string) {
	t.Helper()
	if resp.StatusCode != code || body["reason"] != reason || !strings.Contains(body["message"].(string), msgPart) {
		t.Errorf("%s: got %d %v, want %d %s with %q", what, resp.StatusCode, body, code, reason, msgPart)
	}
}

func TestLoginSessionsAndActions(t *testing.T) {
	e := newEnv(t, dashboard.Options{SessionTTL: time.Hour})
	e.createCanary(t)

	resp, body := e.req(t, http.MethodGet, "/ui/mesh", "", nil, false)
	wantRefusal(t, "a view without login", resp, body, 401, "LoginRequired", "log in")

	resp, body = e.req(t, http.MethodPost, "/ui/login", `{"token":"`+testToken+`"}`, nil, false)
	wantRefusal(t, "a login without the dashboard header", resp, body, 403, "CrossSite", "did not come from the dashboard")

	resp, body = e.req(t, http.MethodPost, "/ui/login", `{"token":"nope"}`, nil, true)
	wantRefusal(t, "a wrong token", resp, body, 401, "WrongToken", "wrong token")

	resp, body = e.req(t, http.MethodPost, "/ui/login", `token=x`, nil, true)
	wantRefusal(t, "a login body that is not JSON", resp, body, 400, "BadRequest", "must be JSON")

	cookie := e.login(t)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/ui/" || cookie.MaxAge != 3600 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, Max-Age 3600", cookie)
	}

	resp, body = e.req(t, http.MethodGet, "/ui/session", "", cookie, false)
	if resp.StatusCode != 200 || body["loggedIn"] != true {
		t.Errorf("session after login: %d %v", resp.StatusCode, body)
	}
	resp, body = e.req(t, http.MethodGet, "/ui/api/apis/canarymesh.dev/v1alpha1/canaries", "", cookie, false)
	if resp.StatusCode != 200 || len(body["items"].([]any)) != 1 {
		t.Errorf("canaries through the API: %d %v", resp.StatusCode, body)
	}
	resp, body = e.req(t, http.MethodGet, "/ui/api/apis/canarymesh.dev/v1alpha1/namespaces/demo/events", "", cookie, false)
	if resp.StatusCode != 200 || body["kind"] != "EventList" {
		t.Errorf("events through the API: %d %v", resp.StatusCode, body)
	}
	resp, body = e.req(t, http.MethodGet, "/ui/api/apis/canarymesh.dev/v1alpha1/alertproviders", "", cookie, false)
	wantRefusal(t, "alert providers through the API proxy", resp, body, 403, "NotReadable", "canaries and events only")
	resp, body = e.req(t, http.MethodGet, "/ui/api/apis/canarymesh.dev/v1alpha1/canaries?watch=true", "", cookie, false)
	wantRefusal(t, "a watch through the API proxy", resp, body, 400, "BadRequest", "/ui/events")

	// Actions: only from the page (header, same origin), with a session.
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/promote", "", cookie, false)
	wantRefusal(t, "an action without the header", resp, body, 403, "CrossSite", "did not come from the dashboard")
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/promote", "", cookie, true, "Origin", "http://evil.example")
	wantRefusal(t, "an action from another origin", resp, body, 403, "CrossSite", "foreign Origin")
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/promote", "", nil, true)
	wantRefusal(t, "an action without login", resp, body, 401, "LoginRequired", "log in with the API token to act")
	if msg, _ := body["message"].(string); strings.Contains(msg, "open to everyone") {
		t.Errorf("an action without login, views behind the login too: %q claims reading is open", msg)
	}
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/explode", "", cookie, true)
	wantRefusal(t, "an unknown action", resp, body, 400, "BadRequest", `unknown action "explode"`)
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/missing/promote", "", cookie, true)
	wantRefusal(t, "an action on a missing canary", resp, body, 404, "ActionFailed", "demo/missing")

	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/promote", "", cookie, true, "Origin", e.srv.URL)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body["message"].(string), "promote of demo/podinfo requested") {
		t.Fatalf("promote: %d %v", resp.StatusCode, body)
	}
	obj, err := e.st.Get(context.Background(), store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.GetAnnotations(); got[canary.AnnotationCommand] != "promote" || got[canary.AnnotationCommandNonce] != body["nonce"] {
		t.Errorf("after promote the canary's annotations are %v, want the command and nonce %v", got, body["nonce"])
	}

	// Expiry: the same cookie is now refused as expired.
	e.clock.add(time.Hour + time.Second)
	resp, body = e.req(t, http.MethodGet, "/ui/mesh", "", cookie, false)
	wantRefusal(t, "a view after expiry", resp, body, 401, "SessionExpired", "log in again")
	resp, body = e.req(t, http.MethodPost, "/ui/actions/demo/podinfo/abort", "", cookie, true)
	wantRefusal(t, "an action after expiry", resp, body, 401, "SessionExpired", "log in again")
	resp, body = e.req(t, http.MethodGet, "/ui/session", "", cookie, false)
	if body["loggedIn"] != false || body["expired"] != true {
		t.Errorf("session after expiry: %d %v", resp.StatusCode, body)
	}

	// Logout forgets the session.
	cookie = e.login(t)
	e.req(t, http.MethodPost, "/ui/logout", "", cookie, true)
	resp, body = e.req(t, http.MethodGet, "/ui/mesh", "", cookie, false)
	wantRefusal(t, "a view after logout", resp, body, 401, "SessionExpired", "log in again")
}

func TestReadOnlyAndAnonymousRead(t *testing.T) {
	anon := newEnv(t, dashboard.Options{AnonymousRead: true})
	anon.createCanary(t)
	resp, body := anon.req(t, http.MethodGet, "/ui/history/demo/podinfo", "", nil, false)
	if resp.StatusCode != 200 || body["thresholds"] == nil {
		t.Errorf("history without login under anonymous read: %d %v", resp.StatusCode, body)
	}
	resp, body = anon.req(t, http.MethodPost, "/ui/actions/demo/podinfo/pause", "", nil, true)
	wantRefusal(t, "an action without login under anonymous read", resp, body, 401, "LoginRequired", "actions need the token")
	resp, body = anon.req(t, http.MethodGet, "/ui/history/demo/gone", "", nil, false)
	wantRefusal(t, "the history of a missing canary", resp, body, 404, "NotFound", "demo/gone does not exist")

	ro := newEnv(t, dashboard.Options{ReadOnly: true})
	ro.createCanary(t)
	cookie := ro.login(t)
	resp, body = ro.req(t, http.MethodPost, "/ui/actions/demo/podinfo/promote", "", cookie, true)
	wantRefusal(t, "an action on a read-only dashboard", resp, body, 403, "ReadOnly", "read-only")
	resp, body = ro.req(t, http.MethodGet, "/ui/session", "", cookie, false)
	if body["readOnly"] != true || body["loggedIn"] != true {
		t.Errorf("read-only session: %v", body)
	}
}

func TestPagesAndAPIPassThrough(t *testing.T) {
	e := newEnv(t, dashboard.Options{})
	resp, _ := e.req(t, http.MethodGet, "/", "", nil, false)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
		resp, _ := e.req(t, http.MethodGet, p, "", nil, false)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	// The API behind keeps its own token check.
	resp, _ = e.req(t, http.MethodGet, "/apis/canarymesh.dev/v1alpha1/canaries", "", nil, false)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API without a token through the dashboard's listener: %d", resp.StatusCode)
	}
	resp, body := e.req(t, http.MethodGet, "/apis/canarymesh.dev/v1alpha1/canaries", "", nil, false, "Authorization", "Bearer "+testToken)
	if resp.StatusCode != http.StatusOK || body["kind"] != "CanaryList" {
		t.Errorf("the API with the token: %d %v", resp.StatusCode, body)
	}
}

// Given an open event stream, when an object is stored, then a change event names it.
func TestEventsStreamChanges(t *testing.T) {
	e := newEnv(t, dashboard.Options{AnonymousRead: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/ui/events", nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func(event string) string {
		t.Helper()
		cur := ""
		for lines.Scan() {
			l := lines.Text()
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				cur = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok && cur == event {
				return v
			}
		}
		t.Fatalf("the stream ended before a %q event: %v", event, lines.Err())
		return ""
	}
	next("hello")
	e.createCanary(t)
	var c dashboard.Change
	if err := json.Unmarshal([]byte(next("change")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Type != "ADDED" || c.Kind != "Canary" || c.Namespace != "demo" || c.Name != "podinfo" || c.Weight == nil {
		t.Errorf("change %+v", c)
	}
}

// Without a session the stream is refused, so EventSource stops and the page asks for
// a login.
func TestEventsStreamNeedsASession(t *testing.T) {
	e := newEnv(t, dashboard.Options{})
	resp, body := e.req(t, http.MethodGet, "/ui/events", "", nil, false)
	wantRefusal(t, "the stream without login", resp, body, 401, "LoginRequired", "log in")
}
