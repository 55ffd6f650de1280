package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// play runs the two releases.
func (d *run) play(ctx context.Context) error {
	d.say("step 0: podinfo 3.1.0, 2 replicas, behind the gateway on 127.0.0.1:%d", d.ports.gateway)
	if err := d.apply(ctx, "3.1.0"); err != nil {
		return err
	}
	d.table = newTable(d.o.Out)
	if err := d.waitPhase(ctx, "initialised", v1alpha1.CanaryPhaseInitialized, v1alpha1.CanaryPhaseSucceeded); err != nil {
		return err
	}
	if err := d.waitServing(ctx, "3.1.0"); err != nil {
		return err
	}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	d.load(lctx, fmt.Sprintf("http://127.0.0.1:%d/", d.ports.gateway), "", 20)

	d.say("\nstep 1: release 3.1.1 (new logo) — analysed step by step, then promoted")
	if err := d.apply(ctx, "3.1.1"); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "promoted", v1alpha1.CanaryPhaseSucceeded, v1alpha1.CanaryPhaseFailed); err != nil {
		return err
	}
	if d.table.phase != v1alpha1.CanaryPhaseSucceeded {
		return fmt.Errorf("3.1.1 was not promoted: %s", d.table.last)
	}
	if err := d.waitServing(ctx, "3.1.1"); err != nil {
		return err
	}

	d.say("\nstep 2: release 3.1.2 — the seed's injected 500s make its checks fail")
	if err := d.apply(ctx, "3.1.2"); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "analysing", v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhaseFailed); err != nil {
		return err
	}
	// As the seed does: hey -z 1m -c 5 -q 5 http://podinfo-canary.demo:9898/status/500
	ectx, stopErrors := context.WithCancel(ctx)
	defer stopErrors()
	d.load(ectx, fmt.Sprintf("http://127.0.0.1:%d/status/500", d.ports.egress), "podinfo-canary.demo", 25)
	if err := d.waitPhase(ctx, "rolled back", v1alpha1.CanaryPhaseFailed, v1alpha1.CanaryPhaseSucceeded); err != nil {
		return err
	}
	stopErrors()
	if d.table.phase != v1alpha1.CanaryPhaseFailed {
		return fmt.Errorf("3.1.2 was promoted despite its errors: %s", d.table.last)
	}
	return d.waitServing(ctx, "3.1.1")
}

// waitPhase prints the canary's rows until it reaches one of the phases.
func (d *run) waitPhase(ctx context.Context, what string, phases ...v1alpha1.CanaryPhase) error {
	k, _ := v1alpha1.LookupKind("canary")
	deadline := time.Now().Add(d.o.StepTimeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if o, err := d.client.Get(ctx, k, "demo", "podinfo"); err == nil {
			cd := o.(*v1alpha1.Canary)
			d.table.row(cd)
			for _, p := range phases {
				if cd.Status.Phase == p {
					return nil
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("the canary was not %s within %s (last: %s)", what, d.o.StepTimeout, d.table.last)
}

// waitServing checks that every one of 20 requests through the gateway is answered by
// the version, waiting for the mesh to settle first.
func (d *run) waitServing(ctx context.Context, version string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/version", d.ports.gateway)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok := 0
		for i := 0; i < 20; i++ {
			last = fetch(ctx, url)
			if strings.Contains(last, `"`+version+`"`) {
				ok++
			}
		}
		if ok == 20 {
			d.say("  gateway: 20 of 20 requests answered by podinfo %s", version)
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the gateway does not serve podinfo %s only (last answer: %.120s)", version, last)
}

func fetch(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
