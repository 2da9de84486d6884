package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// eventCost is one event's cost to the manager's owner goroutine, from
// manager's BenchmarkEvent (an internal benchmark: it drives the owner one
// event at a time, so it runs through `go test`, from the repository root).
type eventCost struct {
	perOp  time.Duration
	allocs int64
	bytes  int64
}

var benchLine = regexp.MustCompile(`^BenchmarkEvent/(\S+)/models=(\d+)-\d+\s+\d+\s+([\d.]+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op`)

// eventCosts runs BenchmarkEvent and returns its results by event and by
// number of models installed.
func eventCosts(ctx context.Context) (map[string]map[int]eventCost, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkEvent$", "-benchmem", "-benchtime", "20000x", "./manager/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench BenchmarkEvent ./manager/: %w\n%s", err, out)
	}
	costs := map[string]map[int]eventCost{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		ns, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseInt(m[4], 10, 64)
		a, _ := strconv.ParseInt(m[5], 10, 64)
		if costs[m[1]] == nil {
			costs[m[1]] = map[int]eventCost{}
		}
		costs[m[1]][n] = eventCost{perOp: time.Duration(ns), allocs: a, bytes: b}
	}
	if len(costs) == 0 {
		return nil, fmt.Errorf("BenchmarkEvent printed no results:\n%s", out)
	}
	return costs, nil
}

// eventRows are the latency table's rows for the events: what each costs
// with 10 and with 1,000 models installed. Each costs what it changes, so
// the two match: the same allocations (which do not vary from run to
// run, unlike times on a shared machine).
func eventRows(ctx context.Context) ([][]string, []string, error) {
	costs, err := eventCosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	var rows [][]string
	for _, e := range []struct{ name, what string }{
		{"poll", "a poll that finds nothing changed"},
		{"poll_others_moved", "a poll where another program's use moved by 512 MiB"},
		{"load_done", "a load done (the model's state, size, the room)"},
		{"settings_change", "a settings change (busy grace)"},
		{"request_and_release", "a request on a loaded model with a lease, and its release"},
	} {
		small, big := costs[e.name][10], costs[e.name][1000]
		rows = append(rows, []string{"owner's work for " + e.what + ", 1,000 models (10 models)",
			fmt.Sprintf("%s/op, %d allocs, %d B (%s/op, %d allocs, %d B)", fmtDur(big.perOp), big.allocs, big.bytes, fmtDur(small.perOp), small.allocs, small.bytes),
			"the cost of what changed: as many allocations with 1,000 models as with 10", yesNo(big.allocs == small.allocs && big.allocs > 0)})
	}
	notes := []string{"Events: the work of the manager's owner goroutine for one event (handling it, publishing what it changed, answering its callers), " +
		"from `go test -bench BenchmarkEvent ./manager/`: the owner is driven one event at a time, with the server's answers played by the benchmark, " +
		"on an 8 GiB card with one model loaded. A snapshot is redone only when the version its changes bump moved, and then only the views of the models that changed; " +
		"each model's largest context that fits the room is worked out when a snapshot is first read, so a load or another program's use costs the owner " +
		"no view it did not change. Times on this shared 2-core machine vary from run to run; allocations do not."}
	return rows, notes, nil
}
