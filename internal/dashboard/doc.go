// Package dashboard serves Canarymesh's web dashboard from the binary: the mesh as a
// graph, the canaries with their phase and weight, and one canary's analysis as a
// timeline, updated live by server-sent events. It sits in front of the REST API on the
// same listener and reads through that API, so the dashboard sees exactly what
// `canarymesh get` sees; its actions (promote, abort, retry, pause, resume) are the CLI's
// commands, carried by the same annotation.
//
//	browser ──/ui/ (HTML, JS, CSS embedded)
//	        ──/ui/login ───────────────▶ token checked, HttpOnly SameSite=Strict cookie
//	        ──/ui/api/... (GET) ───────▶ REST API with the token (reads)
//	        ──/ui/events (SSE) ◀──────── store Watch: one line per change, ticks for stats
//	        ──/ui/mesh ◀──────────────── graph of store objects + proxies' traffic windows
//	        ──/ui/history/NS/NAME ◀───── step points kept from the watch, and from Events
//	        ──/ui/actions/NS/NAME/VERB ─▶ canary.RequestCommand through the REST API
//
// Actions need a login (the API token pasted once; the session lives in memory and
// expires) and a request only the page itself can make: the session cookie is
// SameSite=Strict and every POST must carry the X-Canarymesh-Dashboard header, which a
// cross-site form cannot set and a cross-site script cannot send without a CORS
// preflight the server never grants.
//
// The front end is hand-written — one HTML page, one script, one stylesheet, charts
// drawn as inline SVG — because the views are few and small: a JavaScript toolchain and
// a charting library would add a build step and a lock file to keep, and a CDN would
// break the offline promise.
package dashboard
