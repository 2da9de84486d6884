package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/vramkeeper/vramkeeper/manager"
)

// TestColumnsHoldTheirText: each column of the models table is wide enough
// for what it shows for models people run, so a cell reads "4.6 GiB
// (measured)", not "4.6 GiB (measu…", and the columns together fit the
// window without a horizontal scroll bar.
func TestColumnsHoldTheirText(t *testing.T) {
	test.NewTempApp(t)
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	s := manager.Snapshot{Time: now, Settings: manager.Settings{NumCtx: 4096}, Models: []manager.ModelView{
		{Name: "nomic-embed-text:latest", Family: "nomic-bert", Parameters: "136.73M", Quantization: "F16",
			EstimateBytes: 527 * mib, Calibrated: true, Fits: true, Priority: 10, State: manager.Idle,
			WarmPercent: 100, LastUsed: now.Add(-59 * time.Minute), TrainedCtx: 2048},
		{Name: "qwen2.5-coder:14b", Family: "qwen2", Parameters: "14.8B", Quantization: "Q4_K_M",
			EstimateBytes: 9900 * mib, Calibrated: true, Priority: 6, State: manager.Idle,
			WarmPercent: 100, LastUsed: now.Add(-30 * time.Hour), TrainedCtx: 131072},
	}}
	pad := 2 * theme.InnerPadding() // a label's text sits inside this
	for _, r := range Rows(s, "", Sort{By: ColName}, now) {
		for c := ColName; c < ColActions; c++ {
			var need float32
			if c == ColContext {
				sel := newContextSelect()
				sel.set(r, nil)
				need = sel.MinSize().Width
			} else {
				need = fyne.MeasureText(r.Text(c), theme.TextSize(), fyne.TextStyle{}).Width + pad
			}
			if need > columnWidths[c] {
				t.Errorf("%s: %s %q needs %.0f, the column is %.0f", r.Name, c.Title(), r.Text(c), need, columnWidths[c])
			}
		}
	}
	actions := container.NewHBox(newRowButton("Load"), newRowButton("Unload"), newRowButton("Pin")).MinSize().Width
	if actions > columnWidths[ColActions] {
		t.Errorf("Load, Unload and Pin need %.0f, the column is %.0f", actions, columnWidths[ColActions])
	}
	// Columns are a padding apart, and the window pads the table.
	var total float32
	for _, w := range columnWidths {
		total += w
	}
	total += float32(numColumns-1) * theme.Padding()
	if room := windowWidth - 2*theme.Padding(); total > room {
		t.Errorf("the columns take %.0f, the window has %.0f", total, room)
	}
}
