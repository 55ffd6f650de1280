package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// maxBody bounds a request body: manifests are small, and the limit keeps a stray upload
// from exhausting memory.
const maxBody = 16 << 20

// Server is the standalone control-plane API.
type Server struct {
	store   store.Store
	token   string
	log     *slog.Logger
	version string
	proxies func() []v1alpha1.Proxy
}

// SetProxySource gives the server the push stream's view of connected proxies, served
// read-only as the proxies kind.
func (s *Server) SetProxySource(f func() []v1alpha1.Proxy) { s.proxies = f }

// NewServer returns an API server over st that admits requests carrying token.
func NewServer(st store.Store, token, version string, log *slog.Logger) *Server {
	return &Server{store: st, token: token, log: log, version: version}
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /version", s.auth(http.HandlerFunc(s.serveVersion)))
	mux.Handle("POST "+ApplyPath, s.auth(http.HandlerFunc(s.serveApply)))
	mux.Handle(groupPrefix+"/", s.auth(http.HandlerFunc(s.serveResource)))
	mux.Handle(corePrefix+"/", s.auth(http.HandlerFunc(s.serveResource)))
	return mux
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			writeError(w, newStatus(http.StatusUnauthorized, ReasonUnauthorized,
				"a valid token is required: pass --token, set CANARYMESH_TOKEN, or read it from the data directory"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// VersionInfo is what GET /version returns.
type VersionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"apiVersion"`
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, VersionInfo{Version: s.version, APIVersion: v1alpha1.APIVersion})
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	rp, err := parsePath(r.URL.Path)
	if err != nil {
		writeError(w, newStatus(http.StatusNotFound, ReasonNotFound, err.Error()))
		return
	}
	ctx := r.Context()
	if rp.kind.ReadOnly {
		s.serveReadOnly(w, r, rp)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		s.serveWatch(w, r, rp)
	case r.Method == http.MethodGet && rp.name == "":
		s.serveList(w, r, rp)
	case r.Method == http.MethodGet:
		obj, err := s.store.Get(ctx, store.Key{Kind: rp.kind.Kind, Namespace: rp.namespace, Name: rp.name})
		respond(w, http.StatusOK, obj, err)
	case r.Method == http.MethodPost && rp.name == "":
		s.serveCreate(w, r, rp)
	case r.Method == http.MethodPut && rp.name != "":
		s.serveUpdate(w, r, rp)
	case r.Method == http.MethodDelete && rp.name != "" && rp.subresource == "":
		s.serveDelete(w, r, rp)
	default:
		writeError(w, newStatus(http.StatusMethodNotAllowed, ReasonMethod, r.Method+" is not allowed on "+r.URL.Path))
	}
}

// serveReadOnly answers GETs of computed views (proxies).
func (s *Server) serveReadOnly(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	if r.Method != http.MethodGet || r.URL.Query().Get("watch") == "true" {
		writeError(w, newStatus(http.StatusMethodNotAllowed, ReasonMethod, rp.kind.Plural+" are read-only and cannot be watched"))
		return
	}
	var items []v1alpha1.Proxy
	if s.proxies != nil {
		items = s.proxies()
	}
	l := List{APIVersion: rp.kind.APIVersion, Kind: rp.kind.Kind + "List", Items: []json.RawMessage{}}
	for i := range items {
		p := &items[i]
		p.GetObjectKind().SetGroupVersionKind(rp.kind.GroupVersionKind())
		if rp.name != "" {
			if p.Name == rp.name {
				writeJSON(w, http.StatusOK, p)
				return
			}
			continue
		}
		data, err := json.Marshal(p)
		if err != nil {
			writeError(w, err)
			return
		}
		l.Items = append(l.Items, data)
	}
	if rp.name != "" {
		writeError(w, newStatus(http.StatusNotFound, ReasonNotFound, fmt.Sprintf("%s %q not found", rp.kind.Singular, rp.name)))
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func respond(w http.ResponseWriter, code int, obj any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, code, obj)
}

// List is the body of a list response.
type List struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   ListMeta          `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
}

// ListMeta carries the resourceVersion a watch continues from.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	objs, rv, err := s.store.List(r.Context(), store.Filter{Kind: rp.kind.Kind, Namespace: rp.namespace})
	if err != nil {
		writeError(w, err)
		return
	}
	l := List{APIVersion: rp.kind.APIVersion, Kind: rp.kind.Kind + "List", Metadata: ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)},
		Items: make([]json.RawMessage, 0, len(objs))}
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			writeError(w, err)
			return
		}
		l.Items = append(l.Items, data)
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, newStatus(http.StatusRequestEntityTooLarge, ReasonBadRequest, "request body: "+err.Error())
	}
	return data, nil
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	data, err := s.readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, err := decodeObject(data, rp.kind)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkPathNamespace(rp, obj); err != nil {
		writeError(w, err)
		return
	}
	obj.SetDeletionTimestamp(nil) // only a DELETE sets it
	var out v1alpha1.Object
	err = s.store.Txn(r.Context(), func(tx store.Tx) error {
		if err := resolveMesh(tx, obj); err != nil {
			return err
		}
		out, err = tx.Create(obj)
		return err
	})
	respond(w, http.StatusCreated, out, err)
}

func checkPathNamespace(rp resourcePath, obj v1alpha1.Object) error {
	if !rp.kind.Namespaced {
		return nil
	}
	switch obj.GetNamespace() {
	case "":
		obj.SetNamespace(rp.namespace)
	case rp.namespace:
	default:
		return newStatus(http.StatusBadRequest, ReasonBadRequest,
			fmt.Sprintf("metadata.namespace %q does not match the namespace %q of the path", obj.GetNamespace(), rp.namespace))
	}
	if obj.GetNamespace() == "" {
		return newStatus(http.StatusBadRequest, ReasonBadRequest, "a namespace is required")
	}
	return nil
}

// serveUpdate replaces an object's user-owned fields (PUT .../name) or its status
// (PUT .../name/status), compare-and-swap on the resourceVersion the client sent.
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	data, err := s.readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, err := decodeObject(data, rp.kind)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkPathNamespace(rp, obj); err != nil {
		writeError(w, err)
		return
	}
	if obj.GetName() != rp.name {
		writeError(w, newStatus(http.StatusBadRequest, ReasonBadRequest, fmt.Sprintf("metadata.name %q does not match the path's %q", obj.GetName(), rp.name)))
		return
	}
	key := store.Key{Kind: rp.kind.Kind, Namespace: rp.namespace, Name: rp.name}
	var out v1alpha1.Object
	err = s.store.Txn(r.Context(), func(tx store.Tx) error {
		cur, err := tx.Get(key)
		if err != nil {
			return err
		}
		if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
			return fmt.Errorf("%s: %w", key, store.ErrConflict)
		}
		var next v1alpha1.Object
		if rp.subresource == "status" {
			next, err = mergeStatus(rp.kind, cur, obj)
		} else {
			if err := resolveMesh(tx, obj); err != nil {
				return err
			}
			if errs := v1alpha1.ValidateUpdate(cur, obj); len(errs) > 0 {
				return invalid(0, obj, errs)
			}
			next, _, err = mergeUser(rp.kind, cur, obj)
			if next != nil {
				// A PUT replaces the finalizers as well: that is how their owners
				// remove theirs (apply leaves them alone).
				next.SetFinalizers(obj.GetFinalizers())
			}
		}
		if err != nil {
			return err
		}
		var removed bool
		out, removed, err = store.UpdateOrFinalize(tx, next)
		if removed {
			s.log.InfoContext(r.Context(), "object deleted: its last finalizer was removed", "key", key.String())
		}
		return err
	})
	respond(w, http.StatusOK, out, err)
}

// serveDelete removes an object, or, while it has finalizers, marks it with a
// deletionTimestamp for their owners to finish (as Kubernetes does).
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	ctx := r.Context()
	key := store.Key{Kind: rp.kind.Kind, Namespace: rp.namespace, Name: rp.name}
	var obj v1alpha1.Object
	var marked bool
	err := s.store.Txn(ctx, func(tx store.Tx) error {
		var err error
		obj, marked, err = store.DeleteOrMark(tx, key, r.URL.Query().Get("resourceVersion"), time.Now())
		return err
	})
	switch {
	case err != nil:
	case marked:
		s.log.InfoContext(ctx, "object marked for deletion; waiting for its finalizers", "key", key.String(), "finalizers", obj.GetFinalizers())
	default:
		s.log.InfoContext(ctx, "object deleted", "key", key.String())
	}
	respond(w, http.StatusOK, obj, err)
}

// serveWatch streams events as newline-delimited JSON until the client leaves.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, rp resourcePath) {
	var from uint64
	if v := r.URL.Query().Get("resourceVersion"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, newStatus(http.StatusBadRequest, ReasonBadRequest, "resourceVersion must be a number"))
			return
		}
		from = n
	} else {
		// No resourceVersion: changes from now on, as Kubernetes does.
		_, rv, err := s.store.List(r.Context(), store.Filter{Kind: rp.kind.Kind, Namespace: rp.namespace})
		if err != nil {
			writeError(w, err)
			return
		}
		from = rv
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := s.store.Watch(ctx, store.Filter{Kind: rp.kind.Kind, Namespace: rp.namespace}, from)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	// A periodic bookmark keeps idle connections alive through proxies and tells the
	// client how far it has seen, so a resumed watch replays less.
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	var last uint64 = from
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			last = ev.ResourceVersion
			if rp.name != "" && ev.Object.GetName() != rp.name {
				continue
			}
			if err := enc.Encode(WatchEvent{Type: string(ev.Type), Object: ev.Object}); err != nil {
				return
			}
		case <-tick.C:
			if err := enc.Encode(WatchEvent{Type: "BOOKMARK", ResourceVersion: strconv.FormatUint(last, 10)}); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	Type            string          `json:"type"`
	Object          v1alpha1.Object `json:"object,omitempty"`
	ResourceVersion string          `json:"resourceVersion,omitempty"`
}

var errDryRun = errors.New("dry run")
