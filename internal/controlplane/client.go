package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Client talks to the control-plane API. Its errors are *StatusError where the server
// answered, so errors.Is(err, store.ErrNotFound) and the like work.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the server at base (e.g. http://127.0.0.1:7480).
func NewClient(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the control plane at %s (is `canarymesh up` running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeStatus(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func decodeStatus(code int, data []byte) error {
	var st Status
	if err := json.Unmarshal(data, &st); err != nil || st.Kind != "Status" {
		return newStatus(code, ReasonInternal, fmt.Sprintf("server answered %d: %s", code, bytes.TrimSpace(data)))
	}
	return &StatusError{Status: st}
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	return v, c.do(ctx, http.MethodGet, "/version", nil, &v)
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, k *v1alpha1.KindInfo, namespace, name string) (v1alpha1.Object, error) {
	obj := k.NewObject()
	if err := c.do(ctx, http.MethodGet, ResourceURL(k, namespace, name), nil, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// List reads the objects of a kind in one namespace, or all of them for namespace "".
func (c *Client) List(ctx context.Context, k *v1alpha1.KindInfo, namespace string) ([]v1alpha1.Object, string, error) {
	var l List
	if err := c.do(ctx, http.MethodGet, ResourceURL(k, namespace, ""), nil, &l); err != nil {
		return nil, "", err
	}
	out := make([]v1alpha1.Object, 0, len(l.Items))
	for _, raw := range l.Items {
		obj := k.NewObject()
		if err := json.Unmarshal(raw, obj); err != nil {
			return nil, "", err
		}
		out = append(out, obj)
	}
	return out, l.Metadata.ResourceVersion, nil
}

// Create stores a new object.
func (c *Client) Create(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error) {
	k, err := v1alpha1.KindOf(obj)
	if err != nil {
		return nil, err
	}
	out := k.NewObject()
	return out, c.do(ctx, http.MethodPost, ResourceURL(k, obj.GetNamespace(), ""), obj, out)
}

// Update replaces an object's spec, labels and annotations; with status set, only its status.
func (c *Client) Update(ctx context.Context, obj v1alpha1.Object, status bool) (v1alpha1.Object, error) {
	k, err := v1alpha1.KindOf(obj)
	if err != nil {
		return nil, err
	}
	p := ResourceURL(k, obj.GetNamespace(), obj.GetName())
	if status {
		p += "/status"
	}
	out := k.NewObject()
	return out, c.do(ctx, http.MethodPut, p, obj, out)
}

// Delete removes an object.
func (c *Client) Delete(ctx context.Context, k *v1alpha1.KindInfo, namespace, name string) error {
	return c.do(ctx, http.MethodDelete, ResourceURL(k, namespace, name), nil, nil)
}

// Apply stores every object or none.
func (c *Client) Apply(ctx context.Context, objs []v1alpha1.Object, dryRun bool) (*ApplyResponse, error) {
	req := ApplyRequest{DryRun: dryRun}
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		req.Items = append(req.Items, data)
	}
	var resp ApplyResponse
	return &resp, c.do(ctx, http.MethodPost, ApplyPath, req, &resp)
}

// Watch streams the changes of a kind (in a namespace, or of one named object) after
// resourceVersion from. The channel closes when ctx ends or the stream breaks; errc
// then says why (nil when ctx ended).
func (c *Client) Watch(ctx context.Context, k *v1alpha1.KindInfo, namespace, name, from string) (<-chan store.Event, <-chan error, error) {
	q := url.Values{"watch": {"true"}}
	if from != "" {
		q.Set("resourceVersion", from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+ResourceURL(k, namespace, name)+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the control plane at %s: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return nil, nil, decodeStatus(resp.StatusCode, data)
	}
	out := make(chan store.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), maxBody)
		for sc.Scan() {
			var raw struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
				errc <- err
				return
			}
			if raw.Type == "BOOKMARK" {
				continue
			}
			obj := k.NewObject()
			if err := json.Unmarshal(raw.Object, obj); err != nil {
				errc <- err
				return
			}
			rv, _ := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
			select {
			case out <- store.Event{Type: store.EventType(raw.Type), Object: obj, ResourceVersion: rv}:
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
		if ctx.Err() != nil {
			errc <- nil
			return
		}
		errc <- sc.Err()
	}()
	return out, errc, nil
}
