package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// maxPoints bounds the steps kept per canary: a release has tens of steps, not thousands.
const maxPoints = 500

// Point is one analysis step of a canary as the timeline chart draws it.
type Point struct {
	Time         time.Time            `json:"time"`
	Phase        v1alpha1.CanaryPhase `json:"phase,omitempty"`
	Weight       int                  `json:"weight"`
	FailedChecks int                  `json:"failedChecks"`
	// SuccessRate (percent) and P99 (milliseconds) are the built-in metrics' values at
	// this step; nil when the canary does not check them or had no data.
	SuccessRate *float64 `json:"successRate,omitempty"`
	P99         *float64 `json:"p99,omitempty"`
	// Source is "status" for a step seen on the watch, "event" for one read back from
	// the canary's Events.
	Source string `json:"source"`
}

// Marker is the end of a release: promoted or rolled back.
type Marker struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // promoted | rolledBack
	Message string    `json:"message,omitempty"`
}

// Thresholds are the bounds the chart draws.
type Thresholds struct {
	SuccessRateMin *float64 `json:"successRateMin,omitempty"`
	P99Max         *float64 `json:"p99Max,omitempty"`
}

// History is one canary's current (or last) release.
type History struct {
	Revision   string     `json:"revision,omitempty"`
	Start      time.Time  `json:"start,omitzero"`
	Points     []Point    `json:"points"`
	Markers    []Marker   `json:"markers"`
	Thresholds Thresholds `json:"thresholds"`
}

// canaryHistory is what the book keeps per canary.
type canaryHistory struct {
	revision string
	start    time.Time
	points   []Point
	markers  []Marker
	lastStep time.Time
	phase    v1alpha1.CanaryPhase
	thr      Thresholds
}

// historyBook keeps per-canary step points from the canaries' status changes.
type historyBook struct {
	mu   sync.Mutex
	byID map[string]*canaryHistory // namespace/name
}

func newHistoryBook() *historyBook { return &historyBook{byID: map[string]*canaryHistory{}} }

// follow watches canaries from the oldest kept change, so the steps of a release under
// way before this process started are read back from the store's history too.
func (b *historyBook) follow(ctx context.Context, st store.Store, log *slog.Logger) error {
	var from uint64
	for {
		events, err := st.Watch(ctx, store.Filter{Kind: "Canary"}, from)
		if errors.Is(err, store.ErrGone) {
			// History was compacted: start from what is stored now.
			objs, rv, lerr := st.List(ctx, store.Filter{Kind: "Canary"})
			if lerr != nil {
				return lerr
			}
			for _, o := range objs {
				b.observe(store.Event{Type: store.Added, Object: o, ResourceVersion: rv})
			}
			from = rv
			continue
		}
		if err != nil {
			return err
		}
		for ev := range events {
			b.observe(ev)
			from = ev.ResourceVersion
		}
		if ctx.Err() != nil {
			return nil
		}
		log.DebugContext(ctx, "canary watch ended; resuming", "from", from)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// observe records a canary change.
func (b *historyBook) observe(ev store.Event) {
	cd, ok := ev.Object.(*v1alpha1.Canary)
	if !ok {
		return
	}
	id := cd.Namespace + "/" + cd.Name
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Type == store.Deleted {
		delete(b.byID, id)
		return
	}
	h := b.byID[id]
	if h == nil {
		h = &canaryHistory{}
		b.byID[id] = h
	}
	h.observe(cd)
}

// analysing reports whether a phase belongs to a release's analysis.
func analysing(p v1alpha1.CanaryPhase) bool {
	switch p {
	case v1alpha1.CanaryPhaseWaiting, v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhaseWaitingPromotion,
		v1alpha1.CanaryPhasePromoting, v1alpha1.CanaryPhaseFinalising:
		return true
	}
	return false
}

func (h *canaryHistory) observe(cd *v1alpha1.Canary) {
	s := &cd.Status
	if analysing(s.Phase) && s.LastAppliedSpec != "" && s.LastAppliedSpec != h.revision {
		// A new release: its timeline starts afresh.
		*h = canaryHistory{revision: s.LastAppliedSpec, start: s.LastTransitionTime.Time}
		if h.start.IsZero() {
			h.start = time.Now()
		}
	}
	h.thr = thresholdsOf(cd)
	if h.revision == "" {
		h.phase = s.Phase
		return // no release seen yet: nothing to draw
	}
	step := time.Time{}
	if s.LastStepTime != nil {
		step = s.LastStepTime.Time
	}
	last := len(h.points) - 1
	changed := last < 0 || h.points[last].Weight != s.CanaryWeight || !step.Equal(h.lastStep) ||
		(s.Phase != h.phase && !analysing(s.Phase))
	if changed && (analysing(s.Phase) || analysing(h.phase)) {
		p := Point{Time: step, Phase: s.Phase, Weight: s.CanaryWeight, FailedChecks: s.FailedChecks, Source: "status"}
		if p.Time.IsZero() || !analysing(s.Phase) {
			p.Time = s.LastTransitionTime.Time
		}
		for _, m := range s.LastMetrics {
			v := m.Value
			if !m.Passed && strings.Contains(m.Message, "no data") {
				continue
			}
			switch m.Name {
			case v1alpha1.MetricRequestSuccessRate:
				p.SuccessRate = &v
			case v1alpha1.MetricRequestDuration:
				p.P99 = &v
			}
		}
		h.points = append(h.points, p)
		if len(h.points) > maxPoints {
			h.points = h.points[len(h.points)-maxPoints:]
		}
		h.lastStep = step
	}
	if s.Phase != h.phase {
		switch s.Phase {
		case v1alpha1.CanaryPhaseSucceeded:
			h.markers = append(h.markers, Marker{Time: s.LastTransitionTime.Time, Kind: "promoted", Message: s.Message})
		case v1alpha1.CanaryPhaseFailed:
			h.markers = append(h.markers, Marker{Time: s.LastTransitionTime.Time, Kind: "rolledBack", Message: s.Message})
		}
	}
	h.phase = s.Phase
}

// thresholdsOf reads the built-in metrics' bounds from the spec.
func thresholdsOf(cd *v1alpha1.Canary) Thresholds {
	var t Thresholds
	an := cd.Spec.Analysis
	if an == nil {
		return t
	}
	for i := range an.Metrics {
		m := &an.Metrics[i]
		r := m.ThresholdRange
		switch {
		case m.Name == v1alpha1.MetricRequestSuccessRate && r != nil && r.Min != nil:
			v := *r.Min
			t.SuccessRateMin = &v
		case m.Name == v1alpha1.MetricRequestSuccessRate && m.Threshold != 0:
			v := m.Threshold
			t.SuccessRateMin = &v
		case m.Name == v1alpha1.MetricRequestDuration && r != nil && r.Max != nil:
			v := *r.Max
			t.P99Max = &v
		case m.Name == v1alpha1.MetricRequestDuration && m.Threshold != 0:
			v := m.Threshold
			t.P99Max = &v
		}
	}
	return t
}

// get returns a copy of a canary's history.
func (b *historyBook) get(id string) (History, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.byID[id]
	if !ok {
		return History{Points: []Point{}, Markers: []Marker{}}, false
	}
	return History{Revision: h.revision, Start: h.start, Thresholds: h.thr,
		Points: append([]Point{}, h.points...), Markers: append([]Marker{}, h.markers...)}, true
}

// Events the controller records at the steps of a release; their messages carry the
// weight, so a page opened after the steps were watched still draws them.
var (
	reAdvanceWeight  = regexp.MustCompile(`^Advance \S+ canary weight (\d+)$`)
	reAdvanceMirror  = regexp.MustCompile(`^Advance \S+ mirroring`)
	reAdvanceIter    = regexp.MustCompile(`^Advance \S+ canary iteration (\d+)/(\d+)$`)
	reAllToCanary    = regexp.MustCompile(`^Routing all traffic to canary `)
	reNewRevision    = regexp.MustCompile(`^New revision detected!`)
	rePromoted       = regexp.MustCompile(`^Promotion completed!`)
	reRolledBack     = regexp.MustCompile(`^Canary failed!`)
	reHaltWithReason = regexp.MustCompile(`^Halt \S+ advancement: `)
)

// fromEvents derives step points and markers of the latest release from a canary's
// Events (sorted oldest first), for the steps the watch did not see.
func fromEvents(events []*v1alpha1.Event) (start time.Time, points []Point, markers []Marker) {
	for _, ev := range events {
		if reNewRevision.MatchString(ev.Message) && ev.LastTimestamp.After(start) {
			start = ev.LastTimestamp.Time
		}
	}
	for _, ev := range events {
		t := ev.LastTimestamp.Time
		if t.Before(start) {
			continue
		}
		switch {
		case reAdvanceWeight.MatchString(ev.Message):
			w, _ := strconv.Atoi(reAdvanceWeight.FindStringSubmatch(ev.Message)[1])
			points = append(points, Point{Time: t, Phase: v1alpha1.CanaryPhaseProgressing, Weight: w, Source: "event"})
		case reAdvanceIter.MatchString(ev.Message), reAdvanceMirror.MatchString(ev.Message):
			points = append(points, Point{Time: t, Phase: v1alpha1.CanaryPhaseProgressing, Source: "event"})
		case reAllToCanary.MatchString(ev.Message):
			points = append(points, Point{Time: t, Phase: v1alpha1.CanaryPhaseProgressing, Weight: 100, Source: "event"})
		case reHaltWithReason.MatchString(ev.Message):
			points = append(points, Point{Time: t, Phase: v1alpha1.CanaryPhaseProgressing, Weight: -1, FailedChecks: int(ev.Count), Source: "event"})
		case rePromoted.MatchString(ev.Message):
			markers = append(markers, Marker{Time: t, Kind: "promoted", Message: ev.Message})
		case reRolledBack.MatchString(ev.Message):
			markers = append(markers, Marker{Time: t, Kind: "rolledBack", Message: ev.Message})
		}
	}
	// A halt keeps the weight of the step before it.
	for i := range points {
		if points[i].Weight == -1 {
			points[i].Weight = 0
			if i > 0 {
				points[i].Weight = points[i-1].Weight
			}
		}
	}
	return start, points, markers
}

// merge adds the event-derived points older than the first watched point, and the
// markers the watch did not see.
func merge(h History, evStart time.Time, evPoints []Point, evMarkers []Marker) History {
	if h.Start.IsZero() || (!evStart.IsZero() && evStart.After(h.Start.Add(time.Second))) {
		// The events know of a newer release than the watch: they are the better record.
		if !evStart.IsZero() && (len(h.Points) == 0 || evStart.After(h.Points[len(h.Points)-1].Time)) {
			h.Start, h.Points, h.Markers = evStart, nil, nil
		}
	}
	var first time.Time
	if len(h.Points) > 0 {
		first = h.Points[0].Time
	}
	var older []Point
	for _, p := range evPoints {
		if first.IsZero() || p.Time.Before(first.Add(-500*time.Millisecond)) {
			older = append(older, p)
		}
	}
	h.Points = append(older, h.Points...)
	for _, m := range evMarkers {
		dup := false
		for _, have := range h.Markers {
			dup = dup || (have.Kind == m.Kind && absDur(have.Time.Sub(m.Time)) < 5*time.Second)
		}
		if !dup && !m.Time.Before(h.Start) {
			h.Markers = append(h.Markers, m)
		}
	}
	sort.SliceStable(h.Points, func(i, j int) bool { return h.Points[i].Time.Before(h.Points[j].Time) })
	sort.SliceStable(h.Markers, func(i, j int) bool { return h.Markers[i].Time.Before(h.Markers[j].Time) })
	if h.Points == nil {
		h.Points = []Point{}
	}
	if h.Markers == nil {
		h.Markers = []Marker{}
	}
	return h
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
