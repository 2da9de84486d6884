package metrics_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/metrics"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// source is a manager as the metrics see it: a snapshot set by the test
// and an event channel it feeds.
type source struct {
	mu     sync.Mutex
	snap   manager.Snapshot
	subs   int
	events chan manager.Event
}

func newSource(models ...manager.ModelView) *source {
	slices.SortFunc(models, func(a, b manager.ModelView) int { return strings.Compare(a.Name, b.Name) })
	return &source{events: make(chan manager.Event), snap: manager.Snapshot{
		Budget: 7 << 30, Used: 3 << 30, Others: 1 << 30, OllamaUp: true,
		VRAM: card.VRAM{Total: 8 << 30, Source: card.SourceNVML}, Models: models,
	}}
}

func (s *source) Snapshot() manager.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *source) set(f func(*manager.Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.snap)
}

func (s *source) Subscribe(int) (<-chan manager.Event, func()) {
	s.mu.Lock()
	s.subs++
	s.mu.Unlock()
	return s.events, func() {}
}

// scrape reads /metrics as Prometheus would and returns each series'
// value by "name{label=value,...}" (labels in name order).
func scrape(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape is not Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, mt := range f.Metric {
			var labels []string
			for _, l := range mt.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = value(f.GetType(), mt)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.Counter.GetValue()
	case dto.MetricType_GAUGE:
		return m.Gauge.GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.Histogram.GetSampleCount())
	}
	return m.Untyped.GetValue()
}

// The gauges say what the snapshot says: budget, card, use by ours and by
// others, each installed model loaded or not with its measured size (or
// its estimate when it is not loaded), Ollama up, the GPU given back.
func TestGaugesFollowTheSnapshot(t *testing.T) {
	src := newSource(
		manager.ModelView{Name: "chat:1b", Loaded: true, SizeBytes: 900 << 20, EstimateBytes: 1 << 30},
		manager.ModelView{Name: "coder:7b", EstimateBytes: 5 << 30},
	)
	m := metrics.New(src, nil)
	got := scrape(t, m)
	want := map[string]float64{
		"vramkeeper_budget_bytes":                  7 << 30,
		"vramkeeper_card_bytes":                    8 << 30,
		`vramkeeper_used_bytes{by=models}`:         3 << 30,
		`vramkeeper_used_bytes{by=other}`:          1 << 30,
		`vramkeeper_model_loaded{model=chat:1b}`:   1,
		`vramkeeper_model_loaded{model=coder:7b}`:  0,
		`vramkeeper_model_bytes{model=chat:1b}`:    900 << 20,
		`vramkeeper_model_bytes{model=coder:7b}`:   5 << 30,
		"vramkeeper_ollama_up":                     1,
		"vramkeeper_yielded":                       0,
		`vramkeeper_evictions_total{reason=yield}`: 0,
		"vramkeeper_load_seconds":                  0,
		"vramkeeper_request_wait_seconds":          0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[std]; !ok {
			t.Errorf("standard collector metric %s missing", std)
		}
	}

	src.set(func(s *manager.Snapshot) { s.OllamaUp, s.Yielded = false, true })
	got = scrape(t, m)
	if got["vramkeeper_ollama_up"] != 0 || got["vramkeeper_yielded"] != 1 {
		t.Errorf("after Ollama went away and a yield: up %v, yielded %v", got["vramkeeper_ollama_up"], got["vramkeeper_yielded"])
	}
}

// Events count as loads by result and evictions by reason; a model found
// loaded (not loaded by us) and an unload by request count as neither.
func TestEventsCount(t *testing.T) {
	timedOut := fmt.Sprintf("m did not load within 2m0s (load_timeout), so the request was cancelled: %v", manager.ErrTimedOut)
	tests := []struct {
		name  string
		event manager.Event
		want  string // the series that becomes 1; "" for none
	}{
		{"a load", manager.Event{Kind: manager.EventLoaded, Model: "m:1b", Duration: time.Second, Reason: "best for chat"}, `vramkeeper_loads_total{model=m:1b,result=ok}`},
		{"a restore is a load", manager.Event{Kind: manager.EventRestored, Model: "m:1b", Duration: time.Second}, `vramkeeper_loads_total{model=m:1b,result=ok}`},
		{"a failed load", manager.Event{Kind: manager.EventLoadFailed, Model: "m:1b", Error: "out of memory"}, `vramkeeper_loads_total{model=m:1b,result=failed}`},
		{"a load past its deadline", manager.Event{Kind: manager.EventLoadFailed, Model: "m:1b", Error: timedOut}, `vramkeeper_loads_total{model=m:1b,result=timeout}`},
		{"a model found loaded", manager.Event{Kind: manager.EventLoaded, Model: "m:1b", Reason: "found loaded in Ollama (adopted)"}, ""},
		{"evicted for another", manager.Event{Kind: manager.EventEvicted, Model: "m:1b", For: "big:7b"}, `vramkeeper_evictions_total{reason=make_room}`},
		{"shed over a smaller budget", manager.Event{Kind: manager.EventEvicted, Model: "m:1b", Reason: "over the new budget"}, `vramkeeper_evictions_total{reason=over_limits}`},
		{"given back to other programs", manager.Event{Kind: manager.EventYielded, Model: "m:1b", Reason: "other programs need 3 GiB of the card"}, `vramkeeper_evictions_total{reason=other_programs}`},
		{"the user's yield", manager.Event{Kind: manager.EventYielded, Model: "m:1b", Reason: "gave the GPU back at the user's request"}, `vramkeeper_evictions_total{reason=yield}`},
		{"Ollama's own unload", manager.Event{Kind: manager.EventUnloadedByOllama, Model: "m:1b"}, `vramkeeper_evictions_total{reason=ollama}`},
		{"an unload by request", manager.Event{Kind: manager.EventUnloaded, Model: "m:1b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(newSource(manager.ModelView{Name: "m:1b"}), nil)
			before := scrape(t, m)
			m.Record(tt.event)
			after := scrape(t, m)
			var changed []string
			for k, v := range after {
				if strings.HasPrefix(k, "vramkeeper_") && v != before[k] {
					changed = append(changed, k)
				}
			}
			slices.Sort(changed)
			if tt.event.LoadOutcome() == manager.LoadOK && tt.event.Duration > 0 {
				// A successful load is timed as well.
				changed = slices.DeleteFunc(changed, func(k string) bool { return k == "vramkeeper_load_seconds" })
			}
			want := []string{}
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(changed, want) && !(len(changed) == 0 && len(want) == 0) {
				t.Fatalf("changed %v, want %v", changed, want)
			}
			if tt.want != "" && after[tt.want] != 1 {
				t.Errorf("%s = %v, want 1", tt.want, after[tt.want])
			}
		})
	}
}

// Model series exist only for installed models: a removed model's gauges
// and load counts go, and come back if it is installed again.
func TestRemovedModelsSeriesGo(t *testing.T) {
	src := newSource(manager.ModelView{Name: "a:1b", Loaded: true, SizeBytes: 1 << 30}, manager.ModelView{Name: "b:1b"})
	m := metrics.New(src, nil)
	m.Record(manager.Event{Kind: manager.EventLoaded, Model: "a:1b", Duration: time.Second})
	m.Record(manager.Event{Kind: manager.EventLoadFailed, Model: "typo:1b", Error: "unknown model"})
	got := scrape(t, m)
	if got[`vramkeeper_loads_total{model=a:1b,result=ok}`] != 1 {
		t.Fatalf("load of a:1b not counted: %v", keys(got, "vramkeeper_loads_total"))
	}
	if k := keys(got, `vramkeeper_loads_total{model=typo`); len(k) > 0 {
		t.Errorf("a name that is not installed has series: %v", k)
	}
	src.set(func(s *manager.Snapshot) { s.Models = s.Models[1:] }) // a:1b removed
	got = scrape(t, m)
	if k := keys(got, "model=a:1b"); len(k) > 0 {
		t.Errorf("removed model still has series: %v", k)
	}
	if _, ok := got[`vramkeeper_model_loaded{model=b:1b}`]; !ok {
		t.Errorf("b:1b lost its series")
	}
}

func keys(m map[string]float64, substr string) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range maps.Keys(m) {
			if strings.Contains(k, substr) && !yield(k) {
				return
			}
		}
	})
}

// Run counts what the subscription delivers and returns when its context
// ends.
func TestRunFollowsEvents(t *testing.T) {
	src := newSource(manager.ModelView{Name: "m:1b"})
	m := metrics.New(src, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	src.events <- manager.Event{Kind: manager.EventEvicted, Model: "m:1b", For: "x"}
	src.events <- manager.Event{Kind: manager.EventEvicted, Model: "m:1b", For: "x"} // the first was taken
	cancel()
	<-done
	if got := scrape(t, m)[`vramkeeper_evictions_total{reason=make_room}`]; got < 1 {
		t.Errorf("make_room evictions = %v after two events", got)
	}
}

// The wait a proxied request spent is a histogram sample.
func TestObserveWait(t *testing.T) {
	m := metrics.New(newSource(), nil)
	m.ObserveWait(3 * time.Millisecond)
	m.ObserveWait(2 * time.Second)
	if got := scrape(t, m)["vramkeeper_request_wait_seconds"]; got != 2 {
		t.Errorf("request_wait_seconds count = %v, want 2", got)
	}
}
