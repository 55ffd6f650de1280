package metrics

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// QueryModel holds the values a MetricTemplate's query is rendered with, Flagger's
// template variables: {{ name }}, {{ namespace }}, {{ target }}, {{ service }},
// {{ ingress }}, {{ interval }} and {{ variables.KEY }}.
type QueryModel struct {
	// Name and Namespace are the Canary's.
	Name, Namespace string
	// Target is the name of the Canary's targetRef, Service the apex service's name.
	Target, Service string
	// Ingress is the name of the Canary's ingressRef, if any.
	Ingress string
	// Interval is the metric's window as written in the Canary (1m, 30s).
	Interval string
	// Variables are the metric's templateVariables.
	Variables map[string]string
}

var missingKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

// RenderQuery renders a query template with the model. A variable the Canary does not
// define is an error naming it, so that a typo never becomes an empty label matcher.
func RenderQuery(query string, m QueryModel) (string, error) {
	t, err := parseQuery(query, m)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		if sub := missingKey.FindStringSubmatch(err.Error()); sub != nil {
			return "", fmt.Errorf("query uses template variable %q, which the canary's templateVariables do not define: %w", "variables."+sub[1], ErrMissingVariable)
		}
		return "", fmt.Errorf("rendering the query: %w", err)
	}
	return b.String(), nil
}

// ParseQuery checks that a query template parses, with the same functions RenderQuery
// defines, without rendering it: what can be known of a query before a canary uses it.
func ParseQuery(query string) error {
	_, err := parseQuery(query, QueryModel{})
	return err
}

func parseQuery(query string, m QueryModel) (*template.Template, error) {
	vars := m.Variables
	if vars == nil {
		vars = map[string]string{}
	}
	funcs := template.FuncMap{
		"name":      func() string { return m.Name },
		"namespace": func() string { return m.Namespace },
		"target":    func() string { return m.Target },
		"service":   func() string { return m.Service },
		"ingress":   func() string { return m.Ingress },
		"interval":  func() string { return m.Interval },
		"variables": func() map[string]string { return vars },
	}
	t, err := template.New("query").Funcs(funcs).Option("missingkey=error").Parse(query)
	if err != nil {
		return nil, fmt.Errorf("query template does not parse: %w", err)
	}
	return t, nil
}

// ErrMissingVariable: a query names a template variable that is not defined.
var ErrMissingVariable = errors.New("missing template variable")
