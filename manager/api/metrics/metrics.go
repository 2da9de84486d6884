// Package metrics serves VRAM Keeper's state to Prometheus (GET /metrics):
// gauges read from the manager's latest published snapshot at each scrape,
// counters and histograms fed from its events, and the standard Go and
// process collectors.
//
// A scrape never waits for the manager's owner goroutine: Snapshot is the
// copy the manager published last, and the counters are kept here, fed by
// Run from the event subscription. Model series come from the snapshot, so
// only installed models carry a label, and a removed model's series go
// away at the next scrape.
package metrics

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vramkeeper/vramkeeper/manager"
)

// Source is what the metrics read: *manager.Manager and any keeper.Keeper
// satisfy it.
type Source interface {
	// Snapshot is the state published last; it must not block.
	Snapshot() manager.Snapshot
	Subscribe(buf int) (<-chan manager.Event, func())
}

const (
	// subscribeBuffer holds the events of a burst (a swap is a handful);
	// one that falls behind is dropped by the manager and subscribes again.
	subscribeBuffer = 256
	resubscribeWait = time.Second
	// scrapeTimeout bounds a scrape; gathering reads memory only.
	scrapeTimeout = 10 * time.Second
)

// Metrics is the registry of one manager's metrics.
type Metrics struct {
	src     Source
	log     *slog.Logger
	handler http.Handler
	// sub is the subscription New takes, so that Run counts the events
	// from New on (a warm start's load happens as the server starts).
	sub       <-chan manager.Event
	subCancel func()

	mu sync.Mutex
	// loads counts loads by model and outcome. It keeps models no longer
	// installed (a reinstall continues their count) but Collect shows only
	// installed ones; the names ever loaded in one run are few.
	loads map[loadKey]uint64

	evictions   *prometheus.CounterVec
	loadSeconds prometheus.Histogram
	waitSeconds prometheus.Histogram
}

type loadKey struct{ model, result string }

// New builds the metrics of src; Run feeds the counters.
func New(src Source, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		src:   src,
		log:   log,
		loads: map[loadKey]uint64{},
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vramkeeper_evictions_total",
			Help: "Models taken off the card without a request to unload them, by reason: make_room (for another model), over_limits (budget or model count), other_programs (they took the card), yield (the GPU given back), ollama (it left without an unload of ours).",
		}, []string{"reason"}),
		loadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vramkeeper_load_seconds",
			Help: "How long successful loads took, evictions for them included.",
			// From a cached small model to a slow disk's load_timeout.
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 10),
		}),
		waitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vramkeeper_request_wait_seconds",
			Help: "How long a proxied request waited for its model (loaded, swaps included) before it went to Ollama.",
			// Near zero when the model is loaded; seconds to minutes for a swap.
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
	// Every reason shows from the first scrape, at 0, so rates work.
	for _, r := range manager.EvictionCauses {
		m.evictions.WithLabelValues(r)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		state{m},
		m.evictions, m.loadSeconds, m.waitSeconds,
	)
	m.sub, m.subCancel = src.Subscribe(subscribeBuffer)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       scrapeTimeout,
	})
	return m
}

// Handler serves the metrics in Prometheus' text format (or OpenMetrics,
// as the scraper asks).
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveWait records how long a proxied request waited for its model.
func (m *Metrics) ObserveWait(d time.Duration) { m.waitSeconds.Observe(d.Seconds()) }

// Run follows the manager's events into the counters until ctx ends,
// from the subscription New took. A subscription the manager drops (it
// fell behind) is taken again after a second; the events between are not
// counted. Run once.
func (m *Metrics) Run(ctx context.Context) {
	ch, cancel := m.sub, m.subCancel
	for {
		m.follow(ctx, ch)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(resubscribeWait):
			m.log.Warn("metrics: the manager dropped the event subscription; counting again from now")
		}
		ch, cancel = m.src.Subscribe(subscribeBuffer)
	}
}

func (m *Metrics) follow(ctx context.Context, ch <-chan manager.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			m.Record(e)
		}
	}
}

// Record counts one event (Run calls it for each).
func (m *Metrics) Record(e manager.Event) {
	if r := e.LoadOutcome(); r != "" {
		m.mu.Lock()
		m.loads[loadKey{e.Model, r}]++
		m.mu.Unlock()
		if r == manager.LoadOK && e.Duration > 0 {
			m.loadSeconds.Observe(e.Duration.Seconds())
		}
	}
	if c := e.EvictionCause(); c != "" {
		m.evictions.WithLabelValues(c).Inc()
	}
}

// state collects the gauges from the latest snapshot and the load counts
// of the models it lists.
type state struct{ m *Metrics }

var (
	descBudget = prometheus.NewDesc("vramkeeper_budget_bytes",
		"What VRAM Keeper's models may use together.", nil, nil)
	descCard = prometheus.NewDesc("vramkeeper_card_bytes",
		"The card's size (the driver's, or the configured vram without one).", nil, nil)
	descUsed = prometheus.NewDesc("vramkeeper_used_bytes",
		`VRAM in use: by="models" VRAM Keeper's loaded models, by="other" other programs (known through a driver only).`, []string{"by"}, nil)
	descLoaded = prometheus.NewDesc("vramkeeper_model_loaded",
		"1 when the installed model is loaded, else 0.", []string{"model"}, nil)
	descModelBytes = prometheus.NewDesc("vramkeeper_model_bytes",
		"What the model takes: measured while it is loaded, else the estimate at its context length.", []string{"model"}, nil)
	descUp = prometheus.NewDesc("vramkeeper_ollama_up",
		"1 when Ollama answered the last read, else 0.", nil, nil)
	descYielded = prometheus.NewDesc("vramkeeper_yielded",
		"1 while the GPU is given back (nothing loads until restore), else 0.", nil, nil)
	descLoads = prometheus.NewDesc("vramkeeper_loads_total",
		"Loads VRAM Keeper made, by model and result (ok, failed, timeout).", []string{"model", "result"}, nil)
)

func (s state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBudget, descCard, descUsed, descLoaded, descModelBytes, descUp, descYielded, descLoads} {
		ch <- d
	}
}

func (s state) Collect(ch chan<- prometheus.Metric) {
	snap := s.m.src.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descBudget, float64(snap.Budget))
	gauge(descCard, float64(snap.VRAM.Total))
	gauge(descUsed, float64(snap.Used), "models")
	gauge(descUsed, float64(snap.Others), "other")
	gauge(descUp, bit(snap.OllamaUp))
	gauge(descYielded, bit(snap.Yielded))
	for _, v := range snap.Models {
		gauge(descLoaded, bit(v.Loaded), v.Name)
		b := v.EstimateBytes
		if v.Loaded && v.SizeBytes > 0 {
			b = v.SizeBytes
		}
		gauge(descModelBytes, float64(b), v.Name)
	}
	for k, n := range s.m.loadCounts() {
		if _, ok := snap.Model(k.model); ok {
			ch <- prometheus.MustNewConstMetric(descLoads, prometheus.CounterValue, float64(n), k.model, k.result)
		}
	}
}

// loadCounts copies the counts, so a slow scrape never holds up Record.
func (m *Metrics) loadCounts() map[loadKey]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.loads)
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
