// Package transfer follows a model download as Ollama reports it (one
// update per file and step) and says where it stands: bytes done of the
// total over every file, the rate over the last seconds, the time left,
// in the words the window and the command line show. It is pure: the
// caller passes the time of each update.
package transfer

import (
	"fmt"
	"strings"
	"time"

	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/serving"
)

// rateWindow is how far back the rate looks: long enough to smooth
// Ollama's bursts, short enough to follow a connection that slows down.
const rateWindow = 5 * time.Second

// Meter sums a pull's progress updates.
type Meter struct {
	status  string
	files   map[string]file
	samples []sample
}

type file struct{ total, done uint64 }

type sample struct {
	at   time.Time
	done uint64
}

// Add takes one update received at now.
func (m *Meter) Add(p serving.PullProgress, now time.Time) {
	m.status = p.Status
	if p.Digest == "" || p.Total == 0 {
		return
	}
	if m.files == nil {
		m.files = map[string]file{}
	}
	m.files[p.Digest] = file{total: p.Total, done: min(p.Completed, p.Total)}
	done, _ := m.Bytes()
	m.samples = append(m.samples, sample{now, done})
	// Keep one sample at or before the window's start, to measure from.
	cut := 0
	for cut < len(m.samples)-2 && now.Sub(m.samples[cut+1].at) >= rateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
}

// Bytes is what is downloaded of every file seen so far, and their total.
func (m *Meter) Bytes() (done, total uint64) {
	for _, f := range m.files {
		done += f.done
		total += f.total
	}
	return done, total
}

// Fraction is done over total, 0 before any file is seen.
func (m *Meter) Fraction() float64 {
	done, total := m.Bytes()
	if total == 0 {
		return 0
	}
	return float64(done) / float64(total)
}

// Rate is bytes per second over the last rateWindow; 0 until it has half
// a second of updates.
func (m *Meter) Rate() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	span := last.at.Sub(first.at)
	if span < 500*time.Millisecond || last.done < first.done {
		return 0
	}
	return float64(last.done-first.done) / span.Seconds()
}

// Left is the time the rest takes at the current rate; false when the
// rate is not known yet.
func (m *Meter) Left() (time.Duration, bool) {
	r := m.Rate()
	done, total := m.Bytes()
	if r <= 0 || total == 0 {
		return 0, false
	}
	return time.Duration(float64(total-done) / r * float64(time.Second)), true
}

// Downloading says the files are coming (not the manifest, the check or
// the end).
func (m *Meter) Downloading() bool {
	return strings.HasPrefix(m.status, "pulling ") && m.status != "pulling manifest"
}

// Line says where the pull stands in a few words: "Reading the manifest",
// "1.2 GiB of 2.0 GiB · 35 MB/s · 25 s left", "Checking the download",
// "Done".
func (m *Meter) Line() string {
	switch {
	case m.status == "" || m.status == "pulling manifest":
		return "Reading the manifest"
	case m.status == "success":
		return "Done"
	case strings.HasPrefix(m.status, "verifying"):
		return "Checking the download"
	case strings.HasPrefix(m.status, "writing"), strings.HasPrefix(m.status, "removing"):
		return "Installing"
	}
	done, total := m.Bytes()
	parts := []string{config.FormatBytes(done) + " of " + config.FormatBytes(total)}
	if r := m.Rate(); r > 0 {
		parts = append(parts, Rate(r))
	}
	if left, ok := m.Left(); ok {
		parts = append(parts, Duration(left)+" left")
	}
	return strings.Join(parts, " · ")
}

// Rate writes bytes per second as "35 MB/s" (decimal, as download rates
// are usually given).
func Rate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.1f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.0f MB/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.0f kB/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

// Duration writes a time left as "25 s", "4 min", "1 h 5 min".
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int((d+30*time.Second)/time.Minute))
	}
	return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// Bar is a text progress bar of width cells: "[#####-----]".
func Bar(fraction float64, width int) string {
	n := int(fraction*float64(width) + 0.5)
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}
