package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/api/mcp"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/score"
	"github.com/vramkeeper/vramkeeper/manager/serving"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeKeeper is a manager in a table: chat:1b loaded, coder:7b installed,
// huge:70b larger than the budget. A load evicts every loaded model; the
// task "slow" waits until release is closed or the call's deadline.
type fakeKeeper struct {
	mu      sync.Mutex
	snap    manager.Snapshot
	calls   []string
	release chan struct{}
}

func newFake() *fakeKeeper {
	tables := score.Defaults()
	return &fakeKeeper{release: make(chan struct{}), snap: manager.Snapshot{
		Budget: 7 << 30, Used: 1 << 30, Free: 6 << 30, OllamaUp: true, Tasks: tables.TaskNames(), Roles: tables.RoleNames(),
		VRAM: card.VRAM{Total: 8 << 30, Source: card.SourceEstimated},
		Models: []manager.ModelView{
			{Name: "chat:1b", Loaded: true, State: manager.Loaded, SizeBytes: 1 << 30, EstimateBytes: 1 << 30, NumCtx: 4096, LoadedCtx: 4096, MaxFitCtx: 32768, Fits: true, Priority: 10},
			{Name: "coder:7b", State: manager.Idle, EstimateBytes: 5 << 30, NumCtx: 4096, MaxFitCtx: 8192, Fits: true, Priority: 8},
			{Name: "huge:70b", State: manager.Idle, EstimateBytes: 40 << 30, NumCtx: 4096, Priority: 1},
		},
	}}
}

func (f *fakeKeeper) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeKeeper) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeKeeper) Snapshot() manager.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Models = slices.Clone(s.Models)
	return s
}

func (f *fakeKeeper) known(name string) (manager.ModelView, error) {
	v, ok := f.Snapshot().Lookup(name)
	if !ok {
		return v, fmt.Errorf("%q: %w", name, manager.ErrModelUnknown)
	}
	return v, nil
}

// loaded lists the loaded models other than name.
func (f *fakeKeeper) others(name string) []string {
	var out []string
	for _, v := range f.Snapshot().Models {
		if v.Loaded && v.Name != name {
			out = append(out, v.Name)
		}
	}
	return out
}

func (f *fakeKeeper) setLoaded(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.snap.Models {
		v := &f.snap.Models[i]
		v.Loaded = v.Name == name
		v.LoadedCtx = 0
		if v.Loaded {
			v.LoadedCtx, v.SizeBytes = v.NumCtx, v.EstimateBytes
		}
	}
}

func (f *fakeKeeper) BestModelForTask(ctx context.Context, task, role string) (manager.Choice, error) {
	f.record("best " + task)
	switch task {
	case "slow":
		select {
		case <-f.release:
			return manager.Choice{Model: "chat:1b", Reason: "slow but there", Already: true}, nil
		case <-ctx.Done():
			return manager.Choice{}, ctx.Err()
		}
	case "huge":
		return manager.Choice{}, fmt.Errorf("no model for huge fits and loads: huge:70b needs 40 GiB, over the 7 GiB budget: %w", manager.ErrNeverFits)
	case "code_generation":
		ev := f.others("coder:7b")
		f.setLoaded("coder:7b")
		return manager.Choice{Model: "coder:7b", Reason: "code model", Evicted: ev, Bytes: 5 << 30, Priority: 8}, nil
	case "chat":
		return manager.Choice{Model: "chat:1b", Reason: "small and fast", Bytes: 1 << 30, Priority: 10, Already: true}, nil
	}
	return manager.Choice{}, fmt.Errorf("task %q: %w", task, manager.ErrUnknownTask)
}

func (f *fakeKeeper) Plan(ctx context.Context, req manager.PlanRequest) (manager.Plan, error) {
	f.record("plan " + req.Model + req.Task)
	name := req.Model
	switch req.Task {
	case "":
	case "code_generation":
		name = "coder:7b"
	case "chat":
		name = "chat:1b"
	default:
		return manager.Plan{}, fmt.Errorf("task %q: %w", req.Task, manager.ErrUnknownTask)
	}
	v, err := f.known(name)
	if err != nil {
		return manager.Plan{}, err
	}
	p := manager.Plan{Model: v.Name, Reason: "as the table says", ContextLength: v.NumCtx, NeedBytes: v.EstimateBytes,
		Loaded: v.Loaded, BudgetBytes: 7 << 30, Evict: []string{}, MaxContextNow: v.MaxFitCtx, MaxContext: v.MaxFitCtx}
	switch {
	case v.Loaded:
		p.FitsNow, p.CanLoad = true, true
	case v.EstimateBytes > p.BudgetBytes:
		p.NeverFits, p.Blocked = true, fmt.Sprintf("%s needs 40 GiB, budget 7 GiB: larger than the budget", v.Name)
	default:
		p.CanLoad, p.Evict = true, f.others(v.Name)
	}
	return p, nil
}

func (f *fakeKeeper) LoadAt(ctx context.Context, name string, numCtx int, reason string) (manager.LoadResult, error) {
	f.record("load " + name)
	if f.Snapshot().Yielded {
		return manager.LoadResult{}, fmt.Errorf("not loading %s: %w", name, manager.ErrYielded)
	}
	v, err := f.known(name)
	if err != nil {
		return manager.LoadResult{}, err
	}
	if v.EstimateBytes > 7<<30 {
		return manager.LoadResult{}, fmt.Errorf("%s needs 40 GiB, budget 7 GiB: %w", v.Name, manager.ErrNeverFits)
	}
	ev := f.others(v.Name)
	f.setLoaded(v.Name)
	return manager.LoadResult{Model: v.Name, Evicted: ev, NumCtx: v.NumCtx, Already: v.Loaded}, nil
}

func (f *fakeKeeper) Unload(ctx context.Context, name string) error {
	f.record("unload " + name)
	_, err := f.known(name)
	return err
}

func (f *fakeKeeper) Yield(context.Context) ([]string, error) {
	f.record("yield")
	ev := f.others("")
	f.setLoaded("")
	f.mu.Lock()
	f.snap.Yielded, f.snap.YieldedModels = true, ev
	f.mu.Unlock()
	return ev, nil
}

func (f *fakeKeeper) Restore(context.Context) ([]string, error) {
	f.record("restore")
	f.mu.Lock()
	back := f.snap.YieldedModels
	f.snap.Yielded, f.snap.YieldedModels = false, nil
	f.mu.Unlock()
	for _, n := range back {
		f.setLoaded(n)
	}
	return back, nil
}

func (f *fakeKeeper) History() []manager.Event { return nil }
func (f *fakeKeeper) Subscribe(int) (<-chan manager.Event, func()) {
	return make(chan manager.Event), func() {}
}
func (f *fakeKeeper) Timeline(context.Context, time.Time) (timeline.Window, error) {
	return timeline.Window{}, nil
}
func (f *fakeKeeper) Pull(context.Context, serving.PullRequest, func(serving.PullProgress)) error {
	return nil
}
func (f *fakeKeeper) SetPinned(context.Context, string, bool) error      { return nil }
func (f *fakeKeeper) SetPaused(context.Context, bool) error              { return nil }
func (f *fakeKeeper) Apply(context.Context, manager.SettingsPatch) error { return nil }

// connect runs the server on k over an in-memory pipe and returns a client
// session of the official Go SDK's client.
func connect(t testing.TB, k *fakeKeeper, opt mcp.Options, copt *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, ct := sdk.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- mcp.New(k, opt).Run(ctx, st) }()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, copt).Connect(ctx, ct, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		cancel()
		<-done
	})
	return cs
}

var eightTools = []string{"best_model", "fits", "give_gpu_back", "load_model", "models", "restore_models", "status", "unload_model"}

// The eight tools are listed, each with an object input schema, an output
// schema and a description.
func TestListsTheEightTools(t *testing.T) {
	cs := connect(t, newFake(), mcp.Options{}, nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
		in, _ := json.Marshal(tl.InputSchema)
		if !strings.Contains(string(in), `"type":"object"`) || tl.OutputSchema == nil || tl.Description == "" {
			t.Errorf("%s: input %s, output %v, description %q", tl.Name, in, tl.OutputSchema, tl.Description)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, eightTools) {
		t.Fatalf("tools %v, want %v", names, eightTools)
	}
}

// Each tool call answers structured output and a one-line summary, or a
// tool error with the manager's message; bad input is a tool error too.
func TestToolCalls(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tool    string
		args    map[string]any
		isError bool
		text    string         // in the summary, or the error
		out     map[string]any // fields of the structured output
		calls   []string       // the keeper calls it made
	}{
		{name: "status", tool: "status", text: "1.0 GiB of the 7.0 GiB budget used by 1 model (chat:1b)",
			out: map[string]any{"budget_bytes": float64(7 << 30), "yielded": false, "source": "estimated"}},
		{name: "models", tool: "models", text: "3 models installed, 1 loaded (chat:1b); 2 fit the 7.0 GiB budget, 2 fit now"},
		{name: "best loads", tool: "best_model", args: map[string]any{"task": "code_generation", "role": "coder"},
			text: "loaded coder:7b (5.0 GiB) for code_generation, evicting chat:1b: code model",
			out:  map[string]any{"model": "coder:7b", "loaded": true, "dry_run": false, "evicted": []any{"chat:1b"}}, calls: []string{"best code_generation"}},
		{name: "best without loading", tool: "best_model", args: map[string]any{"task": "code_generation", "load": false},
			text: "would load coder:7b (5.0 GiB) for code_generation, evicting chat:1b",
			out:  map[string]any{"model": "coder:7b", "dry_run": true, "evicted": []any{"chat:1b"}}, calls: []string{"plan code_generation"}},
		{name: "best, loaded already", tool: "best_model", args: map[string]any{"task": "chat"}, text: "chat:1b for chat was loaded already",
			out: map[string]any{"already_loaded": true, "evicted": []any{}}, calls: []string{"best chat"}},
		{name: "best, unknown task", tool: "best_model", args: map[string]any{"task": "juggling"}, isError: true, text: "unknown task"},
		{name: "best, never fits", tool: "best_model", args: map[string]any{"task": "huge"}, isError: true, text: "larger than the budget"},
		{name: "best without a task", tool: "best_model", args: map[string]any{}, isError: true, text: "task"},
		{name: "best, a misspelt field", tool: "best_model", args: map[string]any{"task": "chat", "taks": "chat"}, isError: true, text: "taks"},
		{name: "best, load not a bool", tool: "best_model", args: map[string]any{"task": "chat", "load": "no"}, isError: true, text: "load"},
		{name: "fits now", tool: "fits", args: map[string]any{"name": "chat:1b"}, text: "chat:1b at 4096 tokens (1.0 GiB) is loaded",
			out: map[string]any{"loaded": true, "fits_now": true}},
		{name: "fits after evicting", tool: "fits", args: map[string]any{"name": "coder:7b"},
			text: "coder:7b at 4096 tokens (5.0 GiB) fits after evicting chat:1b",
			out:  map[string]any{"can_load": true, "fits_now": false, "evict": []any{"chat:1b"}}, calls: []string{"plan coder:7b"}},
		{name: "never fits", tool: "fits", args: map[string]any{"name": "huge:70b"}, text: "never fits the 7.0 GiB budget",
			out: map[string]any{"never_fits": true, "can_load": false}},
		{name: "fits, unknown model", tool: "fits", args: map[string]any{"name": "nope:1b"}, isError: true, text: "model not found"},
		{name: "fits, negative context", tool: "fits", args: map[string]any{"name": "chat:1b", "context_length": -5}, isError: true, text: "context_length"},
		{name: "load", tool: "load_model", args: map[string]any{"name": "coder:7b"}, text: "loaded coder:7b at 4096 tokens (5.0 GiB), evicting chat:1b",
			out: map[string]any{"model": "coder:7b", "evicted": []any{"chat:1b"}}},
		{name: "load never fits", tool: "load_model", args: map[string]any{"name": "huge:70b"}, isError: true, text: "larger than the budget"},
		{name: "unload", tool: "unload_model", args: map[string]any{"name": "chat:1b"}, text: "unloaded chat:1b", out: map[string]any{"unloaded": true}},
		{name: "unload unknown", tool: "unload_model", args: map[string]any{"name": "nope"}, isError: true, text: "model not found"},
		{name: "give back", tool: "give_gpu_back", text: "gave the GPU back: unloaded chat:1b; nothing loads until restore_models",
			out: map[string]any{"unloaded": []any{"chat:1b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFake()
			cs := connect(t, k, mcp.Options{}, nil)
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("a protocol error, want a tool result: %v", err)
			}
			text := textOf(res)
			if res.IsError != tc.isError || !strings.Contains(text, tc.text) {
				t.Fatalf("isError %v, text %q; want isError %v with %q", res.IsError, text, tc.isError, tc.text)
			}
			if strings.Contains(text, "\n") {
				t.Errorf("the summary is not one line: %q", text)
			}
			if tc.isError {
				return
			}
			var out map[string]any
			b, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("structured output %s: %v", b, err)
			}
			for key, want := range tc.out {
				if got := out[key]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v (output %s)", key, got, want, b)
				}
			}
			if tc.calls != nil && !slices.Equal(k.Calls(), tc.calls) {
				t.Errorf("calls %v, want %v", k.Calls(), tc.calls)
			}
		})
	}
}

func textOf(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " | ")
}

// While the GPU is given back a load is a tool error saying so; a restore
// puts the models back and loads run again.
func TestGiveBackAndRestore(t *testing.T) {
	cs := connect(t, newFake(), mcp.Options{}, nil)
	ctx := context.Background()
	call := func(name string, args map[string]any) *sdk.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	call("give_gpu_back", nil)
	if res := call("load_model", map[string]any{"name": "coder:7b"}); !res.IsError || !strings.Contains(textOf(res), "gave the GPU back") {
		t.Errorf("load while yielded: %v %q", res.IsError, textOf(res))
	}
	if res := call("status", nil); !strings.Contains(textOf(res), "the GPU is given back") {
		t.Errorf("status while yielded: %q", textOf(res))
	}
	if res := call("restore_models", nil); res.IsError || textOf(res) != "restored chat:1b" {
		t.Errorf("restore: %v %q", res.IsError, textOf(res))
	}
	if res := call("load_model", map[string]any{"name": "coder:7b"}); res.IsError {
		t.Errorf("load after restore: %q", textOf(res))
	}
}

// A call past its deadline is a tool error that says so, not a hang.
func TestCallsHaveADeadline(t *testing.T) {
	cs := connect(t, newFake(), mcp.Options{LoadTimeout: 50 * time.Millisecond}, nil)
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "best_model", Arguments: map[string]any{"task": "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(textOf(res), "best_model gave no answer within 50ms") {
		t.Errorf("isError %v: %q", res.IsError, textOf(res))
	}
}

// A slow call tells a client that asked for progress what it is doing,
// until it answers.
func TestSlowCallsReportProgress(t *testing.T) {
	k := newFake()
	k.snap.Loading = "chat:1b"
	heard := make(chan string, 16)
	cs := connect(t, k, mcp.Options{ProgressEvery: time.Millisecond}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			select {
			case heard <- req.Params.Message:
			default:
			}
		},
	})
	first := make(chan string, 1)
	go func() {
		first <- <-heard // one progress notification: the call may end
		close(k.release)
	}()
	params := &sdk.CallToolParams{Name: "best_model", Arguments: map[string]any{"task": "slow"}}
	params.SetProgressToken("p1")
	res, err := cs.CallTool(context.Background(), params)
	if err != nil || res.IsError {
		t.Fatalf("%v %v", err, res)
	}
	if msg := <-first; !strings.HasPrefix(msg, "loading chat:1b (") {
		t.Errorf("progress says %q", msg)
	}
}

// Over Streamable HTTP the same server answers a client of the official
// SDK.
func TestStreamableHTTP(t *testing.T) {
	hs := httptest.NewServer(mcp.Handler(newFake(), mcp.Options{}))
	defer hs.Close()
	ctx := context.Background()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: hs.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "fits", Arguments: map[string]any{"name": "coder:7b"}})
	if err != nil || res.IsError || !strings.Contains(textOf(res), "fits after evicting chat:1b") {
		t.Fatalf("%v: %+v", err, res)
	}
}

// FuzzToolArguments: whatever JSON arguments a client sends to whichever
// tool, the answer is a tool result (an error one for bad input, with a
// message), never a protocol error, a crash or a hang; a result that is
// not an error carries structured output.
func FuzzToolArguments(f *testing.F) {
	for i, s := range []string{
		`{}`, `{"task":"chat"}`, `{"task":"code_generation","load":false}`, `{"task":"chat","load":"no"}`,
		`{"task":5}`, `{"taks":"chat"}`, `{"name":"coder:7b","context_length":8192}`, `{"name":"chat:1b","context_length":-1}`,
		`{"name":"huge:70b"}`, `{"name":""}`, `{"name":"nope"}`, `null`, `[]`, `"x"`, `{"name":"chat:1b","context_length":1e40}`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	cs := connect(f, newFake(), mcp.Options{LoadTimeout: 100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond}, nil)
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		if !json.Valid(args) {
			return // a client cannot send it: it is not JSON
		}
		name := eightTools[int(which)%len(eightTools)]
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: json.RawMessage(args)})
		if err != nil {
			t.Fatalf("%s %s: a protocol error: %v", name, args, err)
		}
		if res.IsError && textOf(res) == "" {
			t.Fatalf("%s %s: an error without a message", name, args)
		}
		if !res.IsError && res.StructuredContent == nil {
			t.Fatalf("%s %s: a result without structured output: %s", name, args, textOf(res))
		}
	})
}
