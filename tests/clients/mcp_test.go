package clients_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// step is one thing client.mjs does: a tool call, or with no tool the
// tool list.
type step struct {
	Name string         `json:"name"`
	Tool string         `json:"tool,omitempty"`
	Args map[string]any `json:"args,omitempty"`
}

// seen is what client.mjs printed.
type seen struct {
	Server       map[string]any `json:"server"`
	ConnectError string         `json:"connectError"`
	ConnectCode  int            `json:"connectCode"`
	Steps        map[string]struct {
		Tools []struct {
			Name            string   `json:"name"`
			InputType       string   `json:"inputType"`
			HasOutputSchema bool     `json:"hasOutputSchema"`
			Required        []string `json:"required"`
		} `json:"tools"`
		IsError    bool           `json:"isError"`
		Text       string         `json:"text"`
		Structured map[string]any `json:"structured"`
		Thrown     string         `json:"thrown"`
	} `json:"steps"`
}

// agent runs the TypeScript SDK's client (client.mjs) with steps over the
// transport args name, and returns what it saw.
func agent(t *testing.T, steps []step, args ...string) seen {
	t.Helper()
	nodeBin := node(t)
	b, _ := json.Marshal(steps)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{"client.mjs"}, args...)...)
	cmd.Dir = mcpDir
	cmd.Env = append(os.Environ(), "MCP_STEPS="+string(b))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.mjs %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.String())
	}
	var s seen
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("client.mjs printed %q: %v\nstderr: %s", out, err, stderr.String())
	}
	t.Logf("client.mjs %s: %s", args[0], out)
	if e := stderr.String(); e != "" {
		t.Logf("its stderr (and the server's, over stdio):\n%s", e)
	}
	return s
}

var eightTools = []string{"best_model", "fits", "give_gpu_back", "load_model", "models", "restore_models", "status", "unload_model"}

// checkTools: the eight tools, each with an object input schema and an
// output schema.
func checkTools(t *testing.T, s seen) {
	t.Helper()
	var names []string
	for _, tl := range s.Steps["list"].Tools {
		names = append(names, tl.Name)
		if tl.InputType != "object" || !tl.HasOutputSchema {
			t.Errorf("%s: input type %q, output schema %v", tl.Name, tl.InputType, tl.HasOutputSchema)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, eightTools) {
		t.Fatalf("tools %v, want %v", names, eightTools)
	}
}

// `vramkeeper mcp` as `claude mcp add vramkeeper -- vramkeeper mcp` runs it,
// with no instance running, so it runs the manager itself: the SDK lists
// the eight tools and calls status; fits answers for a model that never
// fits; bad input and an unknown task are tool errors; best_model loads a
// model that Ollama's /api/ps then shows.
func TestTypeScriptSDKOverStdio(t *testing.T) {
	w := newWorld(t)
	args := append([]string{"stdio", binary(t), "mcp", "--state-dir", filepath.Join(w.dir, "stdio-state"),
		"--config", filepath.Join(w.dir, "none.toml"), "--listen", ollamatest.FreeAddrT(t)}, w.flags...)
	s := agent(t, []step{
		{Name: "list"},
		{Name: "status", Tool: "status"},
		{Name: "models", Tool: "models"},
		{Name: "fits big", Tool: "fits", Args: map[string]any{"name": "too-big"}},
		{Name: "no task", Tool: "best_model", Args: map[string]any{}},
		{Name: "unknown task", Tool: "best_model", Args: map[string]any{"task": "juggling"}},
		{Name: "best", Tool: "best_model", Args: map[string]any{"task": "chat"}},
	}, args...)
	if s.ConnectError != "" {
		t.Fatalf("connect: %s", s.ConnectError)
	}
	if s.Server["name"] != "vramkeeper" {
		t.Errorf("server info %v", s.Server)
	}
	checkTools(t, s)
	st := s.Steps["status"]
	if st.IsError || !strings.Contains(st.Text, "budget") || st.Structured["budget_bytes"] != float64(w.budget) || st.Structured["ollama_up"] != true {
		t.Errorf("status: %+v", st)
	}
	if ms := s.Steps["models"].Structured["models"]; ms == nil || len(ms.([]any)) != 3 {
		t.Errorf("models: %+v", s.Steps["models"])
	}
	big := s.Steps["fits big"]
	if big.IsError || big.Structured["never_fits"] != true || big.Structured["can_load"] != false || !strings.Contains(big.Text, "never fits") {
		t.Errorf("fits too-big: %+v", big)
	}
	if r := s.Steps["no task"]; !r.IsError || r.Thrown != "" || !strings.Contains(r.Text, "task") {
		t.Errorf("best_model without a task: %+v, want a tool error", r)
	}
	if r := s.Steps["unknown task"]; !r.IsError || !strings.Contains(r.Text, "unknown task") {
		t.Errorf("best_model juggling: %+v, want a tool error naming the unknown task", r)
	}
	best := s.Steps["best"]
	model, _ := best.Structured["model"].(string)
	if best.IsError || best.Structured["loaded"] != true || (model != chatModel && model != coderModel) {
		t.Fatalf("best_model chat: %+v", best)
	}
	if ps := w.running(t); !contains(ps, model) {
		t.Errorf("best_model said %s; /api/ps shows %v", model, ps)
	}
}

// Over Streamable HTTP with a token: without it the SDK's client, /mcp and
// /metrics get 401; with it, best_model {"task":"chat"} loads the model
// (evicting the other one, which load_model loaded first, as the dry run
// said it would), /api/ps shows it, and /metrics shows it loaded, its load
// counted and the eviction counted under make_room; promtool accepts the
// scrape; a Prometheus server scraping serve with the token finds it loaded
// through its query API; and `vramkeeper mcp` beside serve uses serve.
func TestRealClientsAgainstServe(t *testing.T) {
	const token = "mcp-s3cret"
	w := newWorld(t)
	s := w.startServe(t, token)
	endpoint := "http://" + s.addr + "/mcp"
	var model string
	phase := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	phase("no token: 401", func(t *testing.T) {
		if code, body := s.get(t, "/metrics", false); code != http.StatusUnauthorized {
			t.Errorf("GET /metrics without the token: %d %s", code, body)
		}
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := noKeepAlive.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /mcp without the token: %d", resp.StatusCode)
		}
		if got := agent(t, []step{{Name: "list"}}, "http", endpoint); got.ConnectCode != http.StatusUnauthorized || !strings.Contains(got.ConnectError, "token") {
			t.Errorf("the SDK's client without the token connected, or failed otherwise: %+v", got)
		}
		if got := agent(t, []step{{Name: "list"}}, "http", endpoint, "wrong"); got.ConnectCode != http.StatusUnauthorized {
			t.Errorf("the SDK's client with a wrong token: %+v", got)
		}
	})

	phase("tools with the token", func(t *testing.T) {
		dry := agent(t, []step{{Name: "list"}, {Name: "dry", Tool: "best_model", Args: map[string]any{"task": "chat", "load": false}}}, "http", endpoint, token)
		checkTools(t, dry)
		d := dry.Steps["dry"]
		model, _ = d.Structured["model"].(string)
		if d.IsError || d.Structured["dry_run"] != true || (model != chatModel && model != coderModel) {
			t.Fatalf("best_model without loading: %+v", d)
		}
		if ps := w.running(t); len(ps) != 0 {
			t.Fatalf("a dry run loaded %v", ps)
		}
		s := agent(t, []step{
			{Name: "load other", Tool: "load_model", Args: map[string]any{"name": other(model)}},
			{Name: "would", Tool: "best_model", Args: map[string]any{"task": "chat", "load": false}},
			{Name: "best", Tool: "best_model", Args: map[string]any{"task": "chat"}},
			{Name: "fits big", Tool: "fits", Args: map[string]any{"name": bigModel}},
			{Name: "bad name", Tool: "load_model", Args: map[string]any{"name": 42}},
			{Name: "unknown model", Tool: "load_model", Args: map[string]any{"name": "nope:1b"}},
			{Name: "status", Tool: "status"},
		}, "http", endpoint, token)
		if r := s.Steps["load other"]; r.IsError || r.Structured["model"] != other(model) {
			t.Fatalf("load_model %s: %+v", other(model), r)
		}
		would := fmt.Sprint(s.Steps["would"].Structured["evicted"])
		best := s.Steps["best"]
		if best.IsError || best.Structured["model"] != model || fmt.Sprint(best.Structured["evicted"]) != fmt.Sprint([]any{other(model)}) {
			t.Fatalf("best_model chat: %+v; want %s evicting %s", best, model, other(model))
		}
		if would != fmt.Sprint(best.Structured["evicted"]) {
			t.Errorf("the dry run said it would evict %s; the load evicted %v", would, best.Structured["evicted"])
		}
		if r := s.Steps["fits big"]; r.IsError || r.Structured["never_fits"] != true {
			t.Errorf("fits %s: %+v", bigModel, r)
		}
		if r := s.Steps["bad name"]; !r.IsError || r.Thrown != "" {
			t.Errorf("load_model with a number for a name: %+v, want a tool error", r)
		}
		if r := s.Steps["unknown model"]; !r.IsError || !strings.Contains(r.Text, "not found") {
			t.Errorf("load_model nope: %+v, want a tool error naming the unknown model", r)
		}
		if ps := w.running(t); !slices.Equal(ps, []string{model}) {
			t.Errorf("/api/ps shows %v, want just %s", ps, model)
		}
	})

	phase("metrics", func(t *testing.T) {
		want := map[string]func(string) bool{
			fmt.Sprintf(`vramkeeper_model_loaded{model=%q}`, model):            equals(1),
			fmt.Sprintf(`vramkeeper_model_loaded{model=%q}`, other(model)):     equals(0),
			fmt.Sprintf(`vramkeeper_loads_total{model=%q,result="ok"}`, model): atLeast(1),
			`vramkeeper_evictions_total{reason="make_room"}`:                   atLeast(1),
			`vramkeeper_ollama_up`:    equals(1),
			`vramkeeper_budget_bytes`: equals(float64(w.budget)),
		}
		var scrape string
		// The counters follow the event stream: give it a moment.
		for deadline := time.Now().Add(15 * time.Second); ; {
			code, body := s.get(t, "/metrics", true)
			if code != http.StatusOK {
				t.Fatalf("GET /metrics with the token: %d %s", code, body)
			}
			scrape = body
			var wrong []string
			for series, ok := range want {
				if !ok(metric(scrape, series)) {
					wrong = append(wrong, fmt.Sprintf("%s = %q", series, metric(scrape, series)))
				}
			}
			if len(wrong) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after best_model chat: %s\n%s", strings.Join(wrong, "; "), grep(scrape, "vramkeeper_"))
			}
			time.Sleep(200 * time.Millisecond) // polling the scrape, bounded by deadline
		}
		promtool := need(t, "promtool", "apt-get install prometheus")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	phase("a Prometheus server scrapes serve", func(t *testing.T) {
		v := prometheusQuery(t, s, fmt.Sprintf(`vramkeeper_model_loaded{model=%q}`, model))
		if v != "1" {
			t.Errorf("Prometheus says vramkeeper_model_loaded{model=%q} = %q", model, v)
		}
	})

	phase("vramkeeper mcp beside serve uses serve", func(t *testing.T) {
		got := agent(t, []step{{Name: "status", Tool: "status"}}, append([]string{"stdio", binary(t), "mcp",
			"--listen", s.addr, "--config", s.config, "--state-dir", s.state}, w.flags...)...)
		st := got.Steps["status"]
		loaded, _ := st.Structured["loaded"].([]any)
		if st.IsError || len(loaded) != 1 || loaded[0].(map[string]any)["name"] != model {
			t.Errorf("status through the running serve: %+v", st)
		}
	})
}

func equals(v float64) func(string) bool {
	return func(s string) bool { f, err := strconv.ParseFloat(s, 64); return err == nil && f == v }
}

func atLeast(v float64) func(string) bool {
	return func(s string) bool { f, err := strconv.ParseFloat(s, 64); return err == nil && f >= v }
}

func grep(s, substr string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// prometheusQuery runs Debian's Prometheus server scraping serve's
// /metrics every second with the token, and returns the value its query
// API gives for query once it has one.
func prometheusQuery(t *testing.T, s *serve, query string) string {
	t.Helper()
	bin := need(t, "prometheus", "apt-get install prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: vramkeeper
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, s.token, s.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := ollamatest.FreeAddrT(t)
	ctx, cancel := context.WithCancel(context.Background())
	var log lockedBuffer
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if v, err := promValue(addr, query); err == nil && v != "" {
			return v
		} else if err != nil {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond) // waiting for the first scrapes, bounded by deadline
	}
	up, _ := promValue(addr, `up{job="vramkeeper"}`)
	t.Fatalf("Prometheus had no value for %s within 90s (up=%q; last error: %s)", query, up, last)
	return ""
}

// promValue asks Prometheus' query API for an instant vector and returns
// the first sample's value ("" for no sample).
func promValue(addr, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query), nil)
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", fmt.Errorf("query %s: %w", query, err)
	}
	if r.Status != "success" {
		return "", fmt.Errorf("query %s: %s", query, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return "", nil
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	return v, nil
}
