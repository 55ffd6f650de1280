package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// tickEvery is how often the event stream sends a tick, on which the mesh view reads
// the traffic figures again; it also finds a session that expired meanwhile.
const tickEvery = 2 * time.Second

// Change is the data of an SSE "change" event: which object changed. The page reads
// the object again through the API when it shows it.
type Change struct {
	Type            string `json:"type"`
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name"`
	ResourceVersion uint64 `json:"resourceVersion"`
	// Phase and Weight ride along for canaries, so the list updates without a read.
	Phase  v1alpha1.CanaryPhase `json:"phase,omitempty"`
	Weight *int                 `json:"weight,omitempty"`
}

// serveEvents streams the store's changes as server-sent events until the client
// leaves, the session expires or the store closes; EventSource reconnects by itself
// and the page reads everything again on "hello".
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	_, rv, err := d.o.Store.List(ctx, store.Filter{Kind: "Mesh"})
	if err != nil {
		refuse(w, http.StatusServiceUnavailable, "StoreUnavailable", "the store cannot be read: "+err.Error())
		return
	}
	events, err := d.o.Store.Watch(ctx, store.Filter{}, rv)
	if err != nil {
		refuse(w, http.StatusServiceUnavailable, "StoreUnavailable", "the store cannot be watched: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// retry: how soon the browser reconnects after the server went away.
	if _, err := fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {\"resourceVersion\":%d}\n\n", rv); err != nil {
		return
	}
	_ = rc.Flush()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return // the store closed or we fell behind: the browser reconnects
			}
			if err := writeChange(w, ev); err != nil {
				return
			}
		case <-tick.C:
			if !d.o.AnonymousRead {
				if st, _ := d.sessions.check(r); st != validSession {
					_, _ = fmt.Fprintf(w, "event: expired\ndata: %q\n\n", msgExpired)
					_ = rc.Flush()
					return
				}
			}
			if _, err := fmt.Fprintf(w, "event: tick\ndata: %d\n\n", d.o.Now().UnixMilli()); err != nil {
				return
			}
		case <-ctx.Done():
			return
		case <-d.closing:
			return // shutting down: the browser reconnects to the next server
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeChange(w http.ResponseWriter, ev store.Event) error {
	k, err := v1alpha1.KindOf(ev.Object)
	if err != nil {
		return nil // a kind the page does not know; nothing to say
	}
	c := Change{Type: string(ev.Type), Kind: k.Kind, Namespace: ev.Object.GetNamespace(), Name: ev.Object.GetName(), ResourceVersion: ev.ResourceVersion}
	if cd, ok := ev.Object.(*v1alpha1.Canary); ok {
		c.Phase = cd.Status.Phase
		wt := cd.Status.CanaryWeight
		c.Weight = &wt
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: change\ndata: %s\n\n", data)
	return err
}
