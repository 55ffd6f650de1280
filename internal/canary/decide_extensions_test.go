package canary

import (
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Blue/green with mirror, as Flagger does it: while the iterations are counted the
// primary serves everything and mirrorWeight percent (100 by default) is copied to the
// canary; then all traffic goes to the canary for a last round, without a mirror.
func TestDecideBlueGreenMirror(t *testing.T) {
	blueGreen := func(cd *v1alpha1.Canary) {
		a := cd.Spec.Analysis
		a.StepWeight, a.MaxWeight, a.Iterations, a.Mirror = 0, 0, 2, true
	}
	iter := func(n int, mirrored bool) v1alpha1.CanaryStatus {
		s := asked(analysing(0))
		s.Iterations, s.Mirrored = n, mirrored
		return s
	}
	runCases(t, []decideCase{{
		name: "the first iteration starts the mirror, 100% by default",
		spec: blueGreen,
		st:   iter(0, false),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			if !dec.Status.Mirrored || dec.Status.Iterations != 1 || dec.Status.CanaryWeight != 0 ||
				!hasAction(dec.Actions, SetWeights{Primary: 100, Mirror: true, MirrorWeight: 100}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "mirrorWeight is the share copied",
		spec: func(cd *v1alpha1.Canary) { blueGreen(cd); cd.Spec.Analysis.MirrorWeight = 30 },
		st:   iter(0, false),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			if !hasAction(dec.Actions, SetWeights{Primary: 100, Mirror: true, MirrorWeight: 30}) {
				t.Errorf("actions %v", dec.Actions)
			}
		},
	}, {
		name: "later iterations keep the mirror without asking again",
		spec: blueGreen,
		st:   iter(1, true),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			if !dec.Status.Mirrored || dec.Status.Iterations != 2 || len(actionsOf[SetWeights](dec.Actions)) != 0 {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "after the iterations all traffic goes to the canary, unmirrored",
		spec: blueGreen,
		st:   iter(2, true),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			wantWeight(t, dec, 100)
			if dec.Status.Mirrored || !hasAction(dec.Actions, SetWeights{Canary: 100}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "a failed check during the mirror rolls back and stops it",
		spec: func(cd *v1alpha1.Canary) { blueGreen(cd); cd.Spec.Analysis.Threshold = 1 },
		st:   iter(1, true),
		obs:  results(50, 120),
		check: func(t *testing.T, dec Decision) {
			wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
			if dec.Status.Mirrored || !hasAction(dec.Actions, SetWeights{Primary: 100}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}})
}

// A canary release with mirror mirrors for one interval before it shifts weight (see
// TestMirrorFirstStep); a rollback while mirroring stops the mirror.
func TestDecideCanaryMirrorRollback(t *testing.T) {
	runCases(t, []decideCase{{
		name: "rollback during the mirrored step",
		spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.Mirror, cd.Spec.Analysis.Threshold = true, 1 },
		st:   func() v1alpha1.CanaryStatus { s := asked(analysing(0)); s.Mirrored = true; return s }(),
		obs:  results(50, 120),
		check: func(t *testing.T, dec Decision) {
			wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
			if dec.Status.Mirrored || !hasAction(dec.Actions, SetWeights{Primary: 100}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}})
}

// Session affinity, as Flagger keeps it: a canary cookie is made the first time the
// canary gets weight and kept for the release; a primary cookie too with
// primaryCookieName; when the weight drops to zero (promotion, rollback) the canary cookie
// becomes the previous one, which the router expires.
func TestDecideSessionAffinity(t *testing.T) {
	affinity := func(cd *v1alpha1.Canary) {
		cd.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "flagger-cookie", MaxAge: 3600}
	}
	withPrimary := func(cd *v1alpha1.Canary) {
		affinity(cd)
		cd.Spec.Analysis.SessionAffinity.PrimaryCookieName = "primary-cookie"
	}
	withCookie := func(s v1alpha1.CanaryStatus, c string) v1alpha1.CanaryStatus {
		s.SessionAffinityCookie = c
		return s
	}
	token := func(o Observations, tok string) Observations { o.Token = tok; return o }
	affOf := func(dec Decision) *Affinity {
		ws := actionsOf[SetWeights](dec.Actions)
		if len(ws) != 1 {
			return nil
		}
		return ws[0].Affinity
	}
	runCases(t, []decideCase{{
		name: "the first weight makes the canary cookie",
		spec: affinity,
		st:   asked(analysing(0)),
		obs:  token(results(100, 120), "t1"),
		check: func(t *testing.T, dec Decision) {
			wantWeight(t, dec, 5)
			c := dec.Status.SessionAffinityCookie
			name, value, _ := strings.Cut(c, "=")
			if name != "flagger-cookie" || len(value) != 20 || dec.Status.PrimarySessionAffinityCookie != "" {
				t.Fatalf("cookies %q %q", c, dec.Status.PrimarySessionAffinityCookie)
			}
			if a := affOf(dec); a == nil || *a != (Affinity{Canary: c}) {
				t.Errorf("affinity %+v", a)
			}
			// Pure: the same inputs make the same cookie; another token another one.
			cd := seedCanary()
			affinity(cd)
			cd.Status = asked(analysing(0))
			if again := Decide(cd, token(results(100, 120), "t1")); again.Status.SessionAffinityCookie != c {
				t.Errorf("replay made %q, want %q", again.Status.SessionAffinityCookie, c)
			}
			if other := Decide(cd, token(results(100, 120), "t2")); other.Status.SessionAffinityCookie == c {
				t.Errorf("another token made the same cookie %q", c)
			}
		},
	}, {
		name: "the cookie is kept for the release",
		spec: affinity,
		st:   withCookie(asked(analysing(5)), "flagger-cookie=abc"),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			wantWeight(t, dec, 10)
			if dec.Status.SessionAffinityCookie != "flagger-cookie=abc" || !hasAction(dec.Actions,
				SetWeights{Primary: 90, Canary: 10, Affinity: &Affinity{Canary: "flagger-cookie=abc"}}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "primaryCookieName makes a primary cookie too, with another value",
		spec: withPrimary,
		st:   asked(analysing(0)),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			c, p := dec.Status.SessionAffinityCookie, dec.Status.PrimarySessionAffinityCookie
			_, cv, _ := strings.Cut(c, "=")
			pn, pv, _ := strings.Cut(p, "=")
			if pn != "primary-cookie" || pv == "" || pv == cv {
				t.Fatalf("canary %q, primary %q", c, p)
			}
			if a := affOf(dec); a == nil || *a != (Affinity{Canary: c, Primary: p}) {
				t.Errorf("affinity %+v", a)
			}
		},
	}, {
		name: "promotion routes to the primary and retires the cookie",
		spec: withPrimary,
		st: func() v1alpha1.CanaryStatus {
			s := withCookie(promoting(50), "flagger-cookie=abc")
			s.PrimarySessionAffinityCookie = "primary-cookie=def"
			return s
		}(),
		obs: obsAt(11*time.Second, "r2"),
		check: func(t *testing.T, dec Decision) {
			wantPhase(t, dec, v1alpha1.CanaryPhaseFinalising)
			s := dec.Status
			if s.SessionAffinityCookie != "" || s.PrimarySessionAffinityCookie != "" || s.PreviousSessionAffinityCookie != "flagger-cookie=abc" {
				t.Errorf("cookies %q %q %q", s.SessionAffinityCookie, s.PrimarySessionAffinityCookie, s.PreviousSessionAffinityCookie)
			}
			if !hasAction(dec.Actions, SetWeights{Primary: 100, Affinity: &Affinity{Previous: "flagger-cookie=abc"}}) {
				t.Errorf("actions %v", dec.Actions)
			}
		},
	}, {
		name: "rollback retires the cookie",
		spec: func(cd *v1alpha1.Canary) { affinity(cd); cd.Spec.Analysis.Threshold = 1 },
		st:   withCookie(asked(analysing(20)), "flagger-cookie=abc"),
		obs:  results(50, 120),
		check: func(t *testing.T, dec Decision) {
			wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
			if dec.Status.PreviousSessionAffinityCookie != "flagger-cookie=abc" || dec.Status.SessionAffinityCookie != "" ||
				!hasAction(dec.Actions, SetWeights{Primary: 100, Affinity: &Affinity{Previous: "flagger-cookie=abc"}}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "the next release makes a new cookie and keeps the previous one",
		spec: affinity,
		st: func() v1alpha1.CanaryStatus {
			s := asked(analysing(0))
			s.PreviousSessionAffinityCookie = "flagger-cookie=old"
			return s
		}(),
		obs: results(100, 120),
		check: func(t *testing.T, dec Decision) {
			c := dec.Status.SessionAffinityCookie
			if c == "" || c == "flagger-cookie=old" || dec.Status.PreviousSessionAffinityCookie != "flagger-cookie=old" {
				t.Fatalf("status %+v", dec.Status)
			}
			if a := affOf(dec); a == nil || *a != (Affinity{Canary: c, Previous: "flagger-cookie=old"}) {
				t.Errorf("affinity %+v", a)
			}
		},
	}, {
		name: "without sessionAffinity no affinity is asked for",
		st:   asked(analysing(0)),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			if a := affOf(dec); a != nil || dec.Status.SessionAffinityCookie != "" {
				t.Errorf("affinity %+v, status %+v", a, dec.Status)
			}
		},
	}})
}
