package metrics_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/internal/metrics"
)

func TestRenderQuery(t *testing.T) {
	m := metrics.QueryModel{Name: "podinfo", Namespace: "demo", Target: "podinfo", Service: "frontend", Ingress: "web",
		Interval: "1m", Variables: map[string]string{"code": "404"}}
	tests := []struct {
		query, want, errHas string
	}{
		{query: `sum(rate(x{ns="{{ namespace }}",pod=~"{{ target }}-.*",svc="{{ service }}"}[{{ interval }}]))`,
			want: `sum(rate(x{ns="demo",pod=~"podinfo-.*",svc="frontend"}[1m]))`},
		{query: `{{ name }}/{{ ingress }}/{{ variables.code }}`, want: "podinfo/web/404"},
		{query: `x{code="{{ variables.status }}"}`, errHas: `"variables.status", which the canary's templateVariables do not define`},
		{query: `{{ args.name }}`, errHas: `function "args" not defined`},
		{query: `{{ name `, errHas: "does not parse"},
	}
	for _, tt := range tests {
		got, err := metrics.RenderQuery(tt.query, m)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("%s: got %q, %v; want an error saying %s", tt.query, got, err, tt.errHas)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.query, got, err, tt.want)
		}
	}
	if _, err := metrics.RenderQuery(`{{ variables.x }}`, metrics.QueryModel{}); !errors.Is(err, metrics.ErrMissingVariable) {
		t.Errorf("no variables at all: %v, want ErrMissingVariable", err)
	}
}

// A query that parses is accepted whatever variables it names: those are the canary's,
// known only when it renders the query.
func TestParseQuery(t *testing.T) {
	for _, q := range []string{`sum(x{ns="{{ namespace }}"}[{{ interval }}])`, `{{ variables.anything }}`, `up`} {
		if err := metrics.ParseQuery(q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, q := range []string{`{{ name `, `{{ args.name }}`} {
		if err := metrics.ParseQuery(q); err == nil {
			t.Errorf("%s: parsed", q)
		}
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, "demo", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("plain.yaml", "username: canary\npassword: s3cret\n")
	write("manifest.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: manifest}\ndata:\n  token: YWJj\nstringData:\n  username: u\n")
	write("bad.yaml", "username: [1, 2]\n")
	s := metrics.FileSecrets{Dir: dir}
	ctx := context.Background()
	got, err := s.Secret(ctx, "demo", "plain")
	if err != nil || string(got["username"]) != "canary" || string(got["password"]) != "s3cret" {
		t.Errorf("plain: %q, %v", got, err)
	}
	got, err = s.Secret(ctx, "demo", "manifest")
	if err != nil || string(got["token"]) != "abc" || string(got["username"]) != "u" {
		t.Errorf("manifest: %q, %v", got, err)
	}
	if _, err := s.Secret(ctx, "demo", "bad"); err == nil || !strings.Contains(err.Error(), `bad.yaml: key "username"`) {
		t.Errorf("bad: %v", err)
	}
	if _, err := s.Secret(ctx, "demo", "missing"); !errors.Is(err, metrics.ErrSecretNotFound) {
		t.Errorf("missing: %v, want ErrSecretNotFound", err)
	}
	if _, err := s.Secret(ctx, "..", "x"); err == nil {
		t.Error("a namespace of .. was read")
	}
}
