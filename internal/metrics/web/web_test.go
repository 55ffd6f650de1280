package web_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/internal/metrics"
	"github.com/canarymesh/canarymesh/internal/metrics/web"
)

// kpiAPI is a small HTTP API holding KPIs as JSON, as a team's own service would.
func kpiAPI(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" || r.Header.Get("X-Team") != "checkout" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			if string(b) != `{"service":"podinfo"}` {
				http.Error(w, "bad body "+string(b), http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"result": {"conversion": 3.5}}`)
		case r.URL.Path == "/broken":
			io.WriteString(w, `not json`)
		default:
			io.WriteString(w, `{"data": {"successRate": 99.5, "asText": "12.5", "missing": null, "name": "x",
				"regions": [{"p99": 120}, {"p99": 80}]}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebProvider(t *testing.T) {
	srv := kpiAPI(t)
	hdr := http.Header{"X-Team": {"checkout"}}
	p, err := web.New(web.Options{URL: srv.URL + "/kpis", Headers: hdr, Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		query  string
		want   float64
		noData bool
		errHas string
	}{
		{query: `{$.data.successRate}`, want: 99.5},
		{query: `{.data.asText}`, want: 12.5},
		{query: `{.data.regions[1].p99}`, want: 80},
		{query: "jsonPath: '{$.result.conversion}'\nbody: '{\"service\":\"podinfo\"}'\n", want: 3.5},
		{query: `{.data.missing}`, noData: true},
		{query: `{.data.nothere}`, noData: true},
		{query: `{.data.name}`, errHas: `picked "x", not a number`},
		{query: `{.data.regions[*].p99}`, errHas: "picked 2 values, want one"},
		{query: `{.data.successRate`, errHas: "does not parse"},
		{query: "jsonPath: '{.a}'\nmethod: DELETE\n", errHas: `method "DELETE"`},
		{query: ``, errHas: "empty"},
	}
	for _, tt := range tests {
		v, err := p.Query(ctx, tt.query)
		switch {
		case tt.noData:
			if !errors.Is(err, metrics.ErrNoData) {
				t.Errorf("%s: %v, %v; want ErrNoData", tt.query, v, err)
			}
		case tt.errHas != "":
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("%s: %v, %v; want an error saying %s", tt.query, v, err, tt.errHas)
			}
		case err != nil || v != tt.want:
			t.Errorf("%s: %v, %v; want %v", tt.query, v, err, tt.want)
		}
	}

	anon, _ := web.New(web.Options{URL: srv.URL + "/kpis"})
	if _, err := anon.Query(ctx, `{.data.successRate}`); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("without credentials: %v", err)
	}
	broken, _ := web.New(web.Options{URL: srv.URL + "/broken", Headers: hdr, Token: "t0ken"})
	if _, err := broken.Query(ctx, `{.a}`); err == nil || !strings.Contains(err.Error(), "no JSON") {
		t.Errorf("not JSON: %v", err)
	}
	srv.Close()
	if _, err := p.Query(ctx, `{.a}`); err == nil || errors.Is(err, metrics.ErrNoData) {
		t.Errorf("server gone: %v, want a connection error", err)
	}
}
