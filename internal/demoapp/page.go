package demoapp

import (
	"html/template"
	"net/http"
)

// pageTemplate is the page a browser gets from /: the version large on the release's
// colour, so a person watching a canary sees at a glance which release answered.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>podinfo v{{.Version}}</title>
<style>
  body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
         background: {{.Color}}; color: #fff; font-family: system-ui, sans-serif; }
  main { text-align: center; padding: 2rem; }
  img, svg { width: 200px; height: 200px; }
  h1 { font-size: 3rem; margin: 1rem 0 0.5rem; }
  p { margin: 0.25rem; font-size: 1.2rem; }
  .host { opacity: 0.8; font-size: 0.9rem; }
</style>
</head>
<body>
<main>
{{if .Logo}}<img src="{{.Logo}}" alt="logo">{{else}}<svg viewBox="0 0 100 100" role="img" aria-label="canary">
  <circle cx="50" cy="50" r="48" fill="#ffffff22"/>
  <ellipse cx="48" cy="60" rx="26" ry="20" fill="#ffd23f"/>
  <circle cx="62" cy="38" r="16" fill="#ffd23f"/>
  <circle cx="67" cy="35" r="3" fill="#222"/>
  <polygon points="77,38 90,42 77,45" fill="#f28c28"/>
  <path d="M24 58 Q8 70 20 80 Q28 70 34 66 Z" fill="#f5b700"/>
</svg>{{end}}
<h1>v{{.Version}}</h1>
<p>{{.Message}}</p>
<p class="host">{{.Hostname}}{{if .Revision}} · {{.Revision}}{{end}}</p>
</main>
</body>
</html>
`))

func (a *app) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, a.info()); err != nil {
		a.opts.Log.Warn("render page failed", "err", err)
	}
}
