package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/transfer"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/keeper"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// How often the progress is written: a terminal's bar is redrawn in
// place; a log (not a terminal) gets a line now and then.
const (
	barEvery  = 200 * time.Millisecond
	lineEvery = 5 * time.Second
	barWidth  = 30
)

// cmdPull downloads a model through the instance (or in-process), with a
// progress bar on the terminal; Ctrl-C stops it, and nothing is installed.
func cmdPull(ctx context.Context, env *Env, k keeper.Keeper, name string) error {
	p := newPullPrinter(env.Stderr, name)
	err := k.Pull(ctx, serving.PullRequest{Name: name, Insecure: env.Flags.Insecure}, p.add)
	p.end()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull of %s stopped; nothing was installed: %w", name, ctx.Err())
		}
		return err
	}
	_, total := p.m.Bytes()
	fmt.Fprintf(env.Stdout, "pulled %s (%s)\n", name, config.FormatBytes(total))
	if v, ok := k.Snapshot().Lookup(name); ok && v.EstimateBytes > 0 {
		fits := "fits the budget"
		if !v.Fits {
			fits = "does not fit the budget"
		}
		fmt.Fprintf(env.Stdout, "it needs about %s at %d tokens: it %s\n", config.FormatBytes(v.EstimateBytes), v.NumCtx, fits)
	}
	return nil
}

// pullPrinter writes a pull's progress to a terminal (a bar redrawn in
// place) or to a file (a line per step and every few seconds).
type pullPrinter struct {
	w     io.Writer
	tty   bool
	name  string
	m     transfer.Meter
	last  time.Time
	shown string // the line last written
	// downloading: the line last written was about the files.
	downloading bool
}

func newPullPrinter(w io.Writer, name string) *pullPrinter {
	return &pullPrinter{w: w, tty: isTerminal(w), name: name}
}

func (p *pullPrinter) add(u serving.PullProgress) {
	now := time.Now()
	p.m.Add(u, now)
	line := p.m.Line()
	if p.tty {
		if now.Sub(p.last) < barEvery && line == p.shown {
			return
		}
		bar := ""
		if p.m.Downloading() {
			bar = fmt.Sprintf(" %s %3.0f %%", transfer.Bar(p.m.Fraction(), barWidth), 100*p.m.Fraction())
		}
		// \r and "erase to the end of the line": one line, redrawn.
		fmt.Fprintf(p.w, "\rpulling %s%s  %s\x1b[K", p.name, bar, line)
	} else {
		down := p.m.Downloading()
		stepChanged := down != p.downloading || (!down && line != p.shown)
		if !stepChanged && now.Sub(p.last) < lineEvery {
			return
		}
		fmt.Fprintf(p.w, "pulling %s: %s\n", p.name, line)
	}
	p.last, p.shown, p.downloading = now, line, p.m.Downloading()
}

// end finishes the bar's line.
func (p *pullPrinter) end() {
	if p.tty && p.shown != "" {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
