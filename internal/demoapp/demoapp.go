// Package demoapp is the podinfo-like service that Canarymesh's demo releases: it answers
// with its version, message, colour and logo, and can be told to fail or slow down so a
// canary analysis has something to catch.
//
// Endpoints keep podinfo's paths and JSON shapes, so the seed tutorials' commands
// (`curl -sd 'test' .../token | grep token`, `hey .../status/500`, `hey .../delay/1`)
// work against it unchanged:
//
//	GET  /                 runtime info as JSON, or an HTML page for Accept: text/html
//	GET  /version          {"version", "commit"}
//	GET  /healthz          {"status": "OK"}
//	GET  /readyz           {"status": "OK"}, or 503 while not ready
//	POST /readyz/enable    mark ready (202)
//	POST /readyz/disable   mark not ready (202)
//	ANY  /status/{code}    answers with that status code
//	ANY  /delay/{seconds}  waits, then answers {"delay": seconds}
//	POST /token            {"token", "expires_at"}: a JWT for the posted user name
//	GET  /headers          the request's headers
//	POST /echo             the request's body, with 202
//	GET  /env              the process environment
//	GET  /metrics          Prometheus metrics from the app's own registry
//
// Options.ErrorRate and Options.Delay apply to every endpoint but the probes and
// /metrics: a failing or slow release must still be ready and observable, or the
// supervisor would take it out of service before the analysis saw it fail.
package demoapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults, as podinfo's.
const (
	DefaultVersion = "dev"
	DefaultColor   = "#34577c"
)

// Environment variables that set the UI fields when Options leave them empty, as they
// do for podinfo.
const (
	EnvColor   = "PODINFO_UI_COLOR"
	EnvLogo    = "PODINFO_UI_LOGO"
	EnvMessage = "PODINFO_UI_MESSAGE"
)

// maxDelay bounds /delay/{seconds}, so one request cannot hold a connection for ever.
const maxDelay = 5 * time.Minute

// Options configure the app. The zero value is usable.
type Options struct {
	// Version is reported by / and /version (default "dev").
	Version string
	// Revision is reported as the commit of /version and the revision of /.
	Revision string
	// Message shown by / (default $PODINFO_UI_MESSAGE, else "greetings from podinfo
	// v<version>").
	Message string
	// Color is the page's background (default $PODINFO_UI_COLOR, else #34577c).
	Color string
	// Logo is an image URL shown on the page (default $PODINFO_UI_LOGO, else a
	// built-in drawing).
	Logo string
	// ErrorRate is the fraction (0..1) of requests answered 500.
	ErrorRate float64
	// Delay is added to every request.
	Delay time.Duration
	// Hostname reported by / (default os.Hostname).
	Hostname string
	// Log receives request failures and lifecycle lines (default: discarded).
	Log *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	o.Color = firstNonEmpty(o.Color, os.Getenv(EnvColor), DefaultColor)
	o.Logo = firstNonEmpty(o.Logo, os.Getenv(EnvLogo))
	o.Message = firstNonEmpty(o.Message, os.Getenv(EnvMessage), "greetings from podinfo v"+o.Version)
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	o.ErrorRate = min(max(o.ErrorRate, 0), 1)
	o.Delay = max(o.Delay, 0)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// app is the handler New returns; Run also flips its readiness on shutdown.
type app struct {
	opts     Options
	mux      *http.ServeMux
	metrics  *metrics
	ready    atomic.Bool
	jwtKey   []byte
	handler  http.Handler
	unfaulty map[string]bool // route patterns that ErrorRate and Delay leave alone
}

// New returns the demo app's handler.
func New(opts Options) http.Handler {
	return newApp(opts)
}

func newApp(opts Options) *app {
	a := &app{
		opts:    opts.withDefaults(),
		mux:     http.NewServeMux(),
		metrics: newMetrics(),
		jwtKey:  randomKey(),
		unfaulty: map[string]bool{
			"/healthz": true, "/readyz": true, "/readyz/enable": true,
			"/readyz/disable": true, "/metrics": true,
		},
	}
	a.ready.Store(true)
	a.routes()
	a.handler = a.instrument(a.faults(a.mux))
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

func (a *app) routes() {
	a.mux.HandleFunc("GET /{$}", a.index)
	a.mux.HandleFunc("GET /version", a.version)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("POST /readyz/enable", a.setReady(true))
	a.mux.HandleFunc("POST /readyz/disable", a.setReady(false))
	a.mux.HandleFunc("/status/{code}", a.status)
	a.mux.HandleFunc("/delay/{seconds}", a.delay)
	a.mux.HandleFunc("POST /token", a.token)
	a.mux.HandleFunc("GET /headers", a.headers)
	a.mux.HandleFunc("POST /echo", a.echo)
	a.mux.HandleFunc("GET /env", a.env)
	a.mux.Handle("GET /metrics", a.metrics.handler())
}

// routeOf returns the path part of the pattern that serves r ("" when none does).
func (a *app) routeOf(r *http.Request) string {
	_, pattern := a.mux.Handler(r)
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	return pattern
}

// faults injects Options.Delay and Options.ErrorRate.
func (a *app) faults(next http.Handler) http.Handler {
	if a.opts.Delay == 0 && a.opts.ErrorRate == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.unfaulty[a.routeOf(r)] {
			next.ServeHTTP(w, r)
			return
		}
		if a.opts.Delay > 0 && !sleep(r.Context(), a.opts.Delay) {
			return
		}
		if a.opts.ErrorRate > 0 && rand.Float64() < a.opts.ErrorRate {
			writeError(w, http.StatusInternalServerError,
				fmt.Sprintf("injected failure (error rate %g)", a.opts.ErrorRate))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// info is podinfo's runtime response; the counts are strings there too.
type info struct {
	Hostname     string `json:"hostname"`
	Version      string `json:"version"`
	Revision     string `json:"revision,omitempty"`
	Color        string `json:"color"`
	Logo         string `json:"logo"`
	Message      string `json:"message"`
	GOOS         string `json:"goos"`
	GOARCH       string `json:"goarch"`
	Runtime      string `json:"runtime"`
	NumGoroutine string `json:"num_goroutine"`
	NumCPU       string `json:"num_cpu"`
}

func (a *app) info() info {
	return info{
		Hostname:     a.opts.Hostname,
		Version:      a.opts.Version,
		Revision:     a.opts.Revision,
		Color:        a.opts.Color,
		Logo:         a.opts.Logo,
		Message:      a.opts.Message,
		GOOS:         runtime.GOOS,
		GOARCH:       runtime.GOARCH,
		Runtime:      runtime.Version(),
		NumGoroutine: strconv.Itoa(runtime.NumGoroutine()),
		NumCPU:       strconv.Itoa(runtime.NumCPU()),
	}
}

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		a.page(w, r)
		return
	}
	writeJSON(w, http.StatusOK, a.info())
}

func (a *app) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": a.opts.Version, "commit": a.opts.Revision})
}

func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
}

func (a *app) readyz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
}

func (a *app) setReady(v bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		a.ready.Store(v)
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *app) status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 200 || code > 599 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status code %q is not a number from 200 to 599", r.PathValue("code")))
		return
	}
	writeJSON(w, code, map[string]int{"status": code})
}

func (a *app) delay(w http.ResponseWriter, r *http.Request) {
	s, err := strconv.ParseFloat(r.PathValue("seconds"), 64)
	if err != nil || s < 0 || s > maxDelay.Seconds() {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("delay %q is not a number of seconds from 0 to %g", r.PathValue("seconds"), maxDelay.Seconds()))
		return
	}
	if !sleep(r.Context(), time.Duration(s*float64(time.Second))) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]float64{"delay": s})
}

func (a *app) headers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, r.Header)
}

// maxBody bounds what /echo and /token read.
const maxBody = 1 << 20

func (a *app) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Color", a.opts.Color)
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}

func (a *app) env(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, os.Environ())
}

// sleep waits d, or until ctx ends; it reports whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers podinfo's error shape, {"code", "message"}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}
