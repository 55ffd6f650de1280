package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/store"
)

//go:embed ui
var uiFiles embed.FS

// Prefix is where the dashboard lives; "/" redirects to it.
const Prefix = "/ui/"

// Options configure a dashboard.
type Options struct {
	// Store is watched for live updates and the canaries' step history.
	Store store.Store
	// Token is the API token a login must present.
	Token string
	// APIURL is the REST API's base URL; actions go through it as the CLI's do.
	APIURL string
	// Windows are the proxies' traffic windows for the mesh graph's edges; nil when no
	// proxy runs in this process (the edges then show no traffic figures).
	Windows builtin.WindowSource
	// ReadOnly hides and refuses every action, for everyone.
	ReadOnly bool
	// AnonymousRead shows the views without a login; actions still need one.
	AnonymousRead bool
	// SessionTTL is how long a login lasts (DefaultSessionTTL when zero).
	SessionTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives the dashboard's logins, refusals and actions.
	Log *slog.Logger
}

// Dashboard serves the web UI in front of the API handler.
type Dashboard struct {
	o        Options
	sessions *sessions
	history  *historyBook
	client   *controlplane.Client
	log      *slog.Logger
	windows  atomic.Pointer[builtin.WindowSource]
	// closing is closed when Run's context ends: event streams end with it, so a
	// server shutdown does not wait for browsers that never hang up.
	closing   chan struct{}
	closeOnce sync.Once
}

// SetWindows gives the mesh graph the proxies' traffic windows, for when the proxies
// start after the dashboard.
func (d *Dashboard) SetWindows(w builtin.WindowSource) {
	if w != nil {
		d.windows.Store(&w)
	}
}

func (d *Dashboard) windowSource() builtin.WindowSource {
	if p := d.windows.Load(); p != nil {
		return *p
	}
	return nil
}

// New returns a dashboard; Run must be running for the canaries' step history.
func New(o Options) (*Dashboard, error) {
	if o.Store == nil || o.Token == "" || o.APIURL == "" {
		return nil, errors.New("dashboard: Store, Token and APIURL are required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{
		o:        o,
		sessions: newSessions(o.SessionTTL, o.Now),
		history:  newHistoryBook(),
		client:   controlplane.NewClient(o.APIURL, o.Token),
		log:      o.Log.With("component", "dashboard"),
		closing:  make(chan struct{}),
	}
	d.SetWindows(o.Windows)
	return d, nil
}

// Run keeps the canaries' step history from the store's watch until ctx ends.
func (d *Dashboard) Run(ctx context.Context) error {
	context.AfterFunc(ctx, func() { d.closeOnce.Do(func() { close(d.closing) }) })
	return d.history.follow(ctx, d.o.Store, d.log)
}

// Handler serves the dashboard under /ui/, redirects / to it, and passes everything
// else to api.
func (d *Dashboard) Handler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(uiFiles, "ui")
	files := http.StripPrefix(Prefix, http.FileServerFS(static))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusFound)
	})
	mux.Handle("GET "+Prefix, secureHeaders(files))
	mux.HandleFunc("GET /ui/session", d.serveSession)
	mux.HandleFunc("POST /ui/login", d.serveLogin)
	mux.HandleFunc("POST /ui/logout", d.serveLogout)
	mux.Handle("GET /ui/api/", d.read(d.apiProxy(api)))
	mux.Handle("GET /ui/events", d.read(http.HandlerFunc(d.serveEvents)))
	mux.Handle("GET /ui/mesh", d.read(http.HandlerFunc(d.serveMesh)))
	mux.Handle("GET /ui/history/{namespace}/{name}", d.read(http.HandlerFunc(d.serveHistory)))
	mux.Handle("POST /ui/actions/{namespace}/{name}/{verb}", d.act(http.HandlerFunc(d.serveAction)))
	mux.Handle("/", api)
	return mux
}

// secureHeaders keeps the page from being framed or from loading anything but itself.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// Messages the page shows as they are.
const (
	msgLogin       = "log in with the API token to see the dashboard"
	msgExpired     = "your session expired or the server restarted: log in again"
	msgReadOnly    = "the dashboard is read-only (canarymesh up --dashboard-read-only): actions are switched off"
	msgCSRF        = "refused: the request did not come from the dashboard page (" + HeaderCSRF + " header missing or foreign Origin)"
	msgWrongToken  = "wrong token: paste the token from the data directory's token file (or CANARYMESH_TOKEN)"
	msgActionLogin = "log in with the API token to act on canaries"
	// msgAnonActionLogin is for --dashboard-anonymous-read, where the views need no login.
	msgAnonActionLogin = "log in to act on canaries: reading is open to everyone, actions need the token"
)

// apiError is the JSON body of every refusal.
type apiError struct {
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, apiError{Message: msg, Reason: reason})
}

// read admits a request to a view: with a session, or anyone under AnonymousRead.
func (d *Dashboard) read(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.o.AnonymousRead {
			next.ServeHTTP(w, r)
			return
		}
		d.withSession(w, r, next, msgLogin)
	})
}

// withSession serves r with next when it carries a valid session, and otherwise says
// that the session expired or, with loginMsg, that a login is needed.
func (d *Dashboard) withSession(w http.ResponseWriter, r *http.Request, next http.Handler, loginMsg string) {
	switch st, _ := d.sessions.check(r); st {
	case validSession:
		next.ServeHTTP(w, r)
	case expiredSession:
		refuse(w, http.StatusUnauthorized, "SessionExpired", msgExpired)
	default:
		refuse(w, http.StatusUnauthorized, "LoginRequired", loginMsg)
	}
}

// act admits an action: not read-only, from the page itself, with a valid session.
func (d *Dashboard) act(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.o.ReadOnly {
			refuse(w, http.StatusForbidden, "ReadOnly", msgReadOnly)
			return
		}
		if !sameOrigin(r) {
			refuse(w, http.StatusForbidden, "CrossSite", msgCSRF)
			return
		}
		msg := msgActionLogin
		if d.o.AnonymousRead {
			msg = msgAnonActionLogin
		}
		d.withSession(w, r, next, msg)
	})
}

// sameOrigin reports whether a POST comes from the dashboard's own page: the custom
// header is present and the Origin, when the browser sends one, is this host.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get(HeaderCSRF) == "" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// SessionInfo is what GET /ui/session tells the page.
type SessionInfo struct {
	LoggedIn      bool      `json:"loggedIn"`
	Expired       bool      `json:"expired"`
	Expires       time.Time `json:"expires,omitzero"`
	ReadOnly      bool      `json:"readOnly"`
	AnonymousRead bool      `json:"anonymousRead"`
	Message       string    `json:"message,omitempty"`
}

func (d *Dashboard) serveSession(w http.ResponseWriter, r *http.Request) {
	st, exp := d.sessions.check(r)
	info := SessionInfo{LoggedIn: st == validSession, Expired: st == expiredSession, Expires: exp,
		ReadOnly: d.o.ReadOnly, AnonymousRead: d.o.AnonymousRead}
	if info.Expired {
		info.Message = msgExpired
	}
	writeJSON(w, http.StatusOK, info)
}

// loginRequest is the body of POST /ui/login.
type loginRequest struct {
	Token string `json:"token"`
}

func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		refuse(w, http.StatusForbidden, "CrossSite", msgCSRF)
		return
	}
	var req loginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "BadRequest", "login: the body must be JSON {\"token\": \"...\"}: "+err.Error())
		return
	}
	tok := strings.TrimSpace(req.Token)
	if subtle.ConstantTimeCompare([]byte(tok), []byte(d.o.Token)) != 1 {
		d.log.WarnContext(r.Context(), "dashboard login refused: wrong token", "remote", r.RemoteAddr)
		refuse(w, http.StatusUnauthorized, "WrongToken", msgWrongToken)
		return
	}
	id, exp, err := d.sessions.create()
	if err != nil {
		refuse(w, http.StatusInternalServerError, "Internal", "login: "+err.Error())
		return
	}
	http.SetCookie(w, sessionCookie(r, id, exp, d.o.SessionTTL))
	d.log.InfoContext(r.Context(), "dashboard login", "remote", r.RemoteAddr, "expires", exp)
	writeJSON(w, http.StatusOK, SessionInfo{LoggedIn: true, Expires: exp, ReadOnly: d.o.ReadOnly, AnonymousRead: d.o.AnonymousRead})
}

func (d *Dashboard) serveLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		refuse(w, http.StatusForbidden, "CrossSite", msgCSRF)
		return
	}
	d.sessions.end(r)
	http.SetCookie(w, sessionCookie(r, "", time.Time{}, 0))
	writeJSON(w, http.StatusOK, SessionInfo{ReadOnly: d.o.ReadOnly, AnonymousRead: d.o.AnonymousRead})
}

// apiProxy passes a read to the REST API with the token: /ui/api/X is the API's /X.
// Watches are left to /ui/events.
func (d *Dashboard) apiProxy(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "" {
			refuse(w, http.StatusBadRequest, "BadRequest", "watch through /ui/events")
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/ui/api")
		if !readable(path) {
			refuse(w, http.StatusForbidden, "NotReadable", "the dashboard reads canaries and events only: "+path+" is not one of them")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = path
		r2.URL.RawPath = ""
		r2.Header.Set("Authorization", "Bearer "+d.o.Token)
		r2.Header.Del("Cookie")
		api.ServeHTTP(w, r2)
	})
}

// readablePlurals are the kinds the page reads through the API. Others (alert
// providers with their webhook addresses, say) stay behind the token even when views
// are open to anyone.
var readablePlurals = map[string]bool{"canaries": true, "events": true}

// readable reports whether an API path lists or reads a kind the page shows.
func readable(path string) bool {
	rest, ok := strings.CutPrefix(path, apiGroupPrefix)
	if !ok {
		return false
	}
	segs := strings.Split(rest, "/")
	if len(segs) >= 2 && segs[0] == "namespaces" {
		segs = segs[2:]
	}
	return (len(segs) == 1 || len(segs) == 2) && readablePlurals[segs[0]]
}

// apiGroupPrefix is where the API serves canarymesh.dev kinds.
const apiGroupPrefix = "/apis/" + v1alpha1.Group + "/" + v1alpha1.Version + "/"

// ActionResult is the answer to an action.
type ActionResult struct {
	Message string `json:"message"`
	Nonce   string `json:"nonce"`
}

func (d *Dashboard) serveAction(w http.ResponseWriter, r *http.Request) {
	ns, name, verb := r.PathValue("namespace"), r.PathValue("name"), canary.ManualCommand(r.PathValue("verb"))
	known := false
	for _, c := range canary.ManualCommands {
		known = known || c == verb
	}
	if !known {
		refuse(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown action %q: one of %v", verb, canary.ManualCommands))
		return
	}
	nonce, err := canary.RequestCommand(r.Context(), d.client, ns, name, verb)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, store.ErrNotFound) {
			code = http.StatusNotFound
		}
		refuse(w, code, "ActionFailed", fmt.Sprintf("%s of canary %s/%s failed: %v", verb, ns, name, err))
		return
	}
	d.log.InfoContext(r.Context(), "dashboard action", "canary", ns+"/"+name, "command", verb, "nonce", nonce, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, ActionResult{Nonce: nonce,
		Message: fmt.Sprintf("%s of %s/%s requested: the controller carries it out at its next run", verb, ns, name)})
}
