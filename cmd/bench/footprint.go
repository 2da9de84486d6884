package main

import (
	"context"
	"log/slog"
	"time"
)

// footprintSection is filled in by footprint_linux.go when the app can run.
var footprintRun func(ctx context.Context, log *slog.Logger, srv *server, idle time.Duration) ([]section, error)

const footprintCmd = "go build -o /tmp/vk . && go run ./cmd/bench -only footprint"

func footprintSection(ctx context.Context, log *slog.Logger, srv *server, idle time.Duration) ([]section, error) {
	if footprintRun != nil {
		return footprintRun(ctx, log, srv, idle)
	}
	return []section{notMeasured("this platform")}, nil
}

func notMeasured(why string) section {
	return section{
		Title:  "Footprint",
		Header: []string{"measurement", "result", "goal", "met"},
		Rows: [][]string{
			{"desktop app idle 60 s under Xvfb, 10 models discovered: CPU", "not measured yet (" + why + ")", "< 0.5 % of a core", "–"},
			{"same: peak RSS (VmHWM)", "not measured yet", "< 80 MB", "–"},
		},
		Notes: []string{"To measure: `" + footprintCmd + "` (needs Xvfb, dbus-run-session and the Ollama binary)."},
	}
}
