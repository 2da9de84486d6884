package e2e

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// A window drawn as the app draws it, in rows (dark theme): the card bar
// with the budget line sticking out and its legend a few rows below, a
// label, the tab bar over its underline, the chart (legend, plot, axis,
// time labels), the split's divider, the history list.
var (
	bgGrey   = color.Gray{23}
	bandGrey = color.Gray{14}
	text     = color.Gray{230}
	modelCol = color.RGBA{0xb0, 0x7a, 0xa1, 0xff}
	primary  = color.RGBA{0x29, 0x6f, 0xf6, 0xff}
)

func fill(img draw.Image, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func window(w int, chartFill bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, 660))
	fill(img, img.Bounds(), bgGrey)
	fill(img, image.Rect(1116, 4, 1118, 40), text) // budget line
	fill(img, image.Rect(0, 8, 960, 36), modelCol) // a model
	fill(img, image.Rect(8, 45, 560, 59), text)    // the legend
	fill(img, image.Rect(12, 74, 516, 88), text)   // "Source: ..."
	fill(img, image.Rect(12, 155, 60, 170), text)  // tab labels
	fill(img, image.Rect(80, 155, 135, 170), text)
	fill(img, image.Rect(150, 155, 210, 170), text)
	fill(img, image.Rect(4, 178, w-4, 182), bandGrey) // tab underline
	fill(img, image.Rect(76, 178, 139, 182), primary) // indicator under tab 1
	fill(img, image.Rect(64, 186, 680, 198), text)    // chart legend
	fill(img, image.Rect(0, 394, w, 395), color.Black)
	fill(img, image.Rect(132, 400, 1258, 410), text)  // time labels
	fill(img, image.Rect(4, 415, w-4, 423), bandGrey) // divider
	fill(img, image.Rect(632, 418, 648, 420), text)   // its handle
	fill(img, image.Rect(12, 435, 700, 450), text)    // a history line
	if chartFill {
		// Areas across the whole hour, taller than the divider.
		fill(img, image.Rect(60, 250, w-12, 394), modelCol)
	}
	return img
}

func TestCloseUps(t *testing.T) {
	tests := []struct {
		name      string
		chartFill bool
		bar, cht  image.Rectangle
	}{
		{"chart with a little data", false, image.Rect(0, 0, 1280, 63), image.Rect(0, 182, 1280, 415)},
		{"chart full of areas", true, image.Rect(0, 0, 1280, 63), image.Rect(0, 182, 1280, 415)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := window(1280, tt.chartFill)
			win := img.Bounds()
			bar, err := CardBarArea(img, win)
			if err != nil || bar != tt.bar {
				t.Errorf("CardBarArea = %v, %v; want %v", bar, err, tt.bar)
			}
			tabs, err := FindTabs(img, win)
			if err != nil || tabs.Selected() != 1 {
				t.Fatalf("FindTabs = %+v, %v; want tab 1 selected", tabs, err)
			}
			chart, err := ChartArea(img, win, tabs)
			if err != nil || chart != tt.cht {
				t.Errorf("ChartArea = %v, %v; want %v", chart, err, tt.cht)
			}
		})
	}
}

func TestCloseUpsFail(t *testing.T) {
	blank := image.NewRGBA(image.Rect(0, 0, 640, 400))
	fill(blank, blank.Bounds(), bgGrey)
	if r, err := CardBarArea(blank, blank.Bounds()); err == nil {
		t.Errorf("CardBarArea on an empty window = %v, want an error", r)
	}
	// The tabs' underline, then nothing that ends the chart.
	fill(blank, image.Rect(4, 100, 636, 104), bandGrey)
	tabs := Tabs{Indicator: image.Rect(10, 100, 60, 104)}
	if r, err := ChartArea(blank, blank.Bounds(), tabs); err == nil {
		t.Errorf("ChartArea without a divider = %v, want an error", r)
	}
}

// drawn is a window drawn for a detector, and what it should say of it.
type drawn struct {
	name string
	draw func(img *image.RGBA)
	want bool
}

// checkDrawn draws each case on an empty 1280x660 window and checks what
// detect says of it.
func checkDrawn(t *testing.T, detector string, cases []drawn, detect func(image.Image) bool) {
	t.Helper()
	for _, tc := range cases {
		img := image.NewRGBA(image.Rect(0, 0, 1280, 660))
		fill(img, img.Bounds(), bgGrey)
		tc.draw(img)
		if got := detect(img); got != tc.want {
			t.Errorf("%s: %s = %v, want %v", tc.name, detector, got, tc.want)
		}
	}
}

func TestTableHasRow(t *testing.T) {
	headerGrey := color.RGBA{0x28, 0x29, 0x2e, 0xff}
	offerGrey := color.Gray{27}
	checkDrawn(t, "TableHasRow", []drawn{
		{"a model in the table", func(img *image.RGBA) {
			fill(img, image.Rect(4, 262, 1276, 298), headerGrey)
			fill(img, image.Rect(60, 275, 120, 285), text) // "Name"
			fill(img, image.Rect(12, 308, 180, 322), text) // the model's name
		}, true},
		{"an empty table", func(img *image.RGBA) {
			fill(img, image.Rect(4, 262, 1276, 298), headerGrey)
			fill(img, image.Rect(60, 275, 120, 285), text)
			fill(img, image.Rect(12, 630, 480, 645), text) // the hint under it
		}, false},
		{"the offer of models", func(img *image.RGBA) {
			fill(img, image.Rect(4, 270, 1276, 298), offerGrey)
			fill(img, image.Rect(12, 278, 80, 290), text)  // "Model"
			fill(img, image.Rect(12, 310, 120, 322), text) // a suggestion
		}, false},
	}, func(img image.Image) bool {
		fill(img.(*image.RGBA), image.Rect(4, 200, 1276, 220), text) // above the tabs: not looked at
		return TableHasRow(img, img.Bounds(), 221)
	})
}

func TestFieldAtBottom(t *testing.T) {
	fieldGrey := color.Gray{32}
	checkDrawn(t, "FieldAtBottom", []drawn{
		{"the offer's name field, its placeholder and Download", func(img *image.RGBA) {
			fill(img, image.Rect(4, 620, 1186, 656), fieldGrey)
			for x := 12; x < 400; x += 4 { // the placeholder's strokes
				fill(img, image.Rect(x, 630, x+1, 645), color.Gray{110})
			}
			fill(img, image.Rect(1190, 620, 1276, 656), color.Gray{41})
		}, true},
		{"the table's hint line", func(img *image.RGBA) {
			fill(img, image.Rect(12, 630, 480, 645), text)
		}, false},
		{"a field not at the bottom (the filter)", func(img *image.RGBA) {
			fill(img, image.Rect(4, 300, 1166, 336), fieldGrey)
		}, false},
		{"a field's border only", func(img *image.RGBA) {
			fill(img, image.Rect(4, 620, 1186, 622), fieldGrey)
			fill(img, image.Rect(4, 654, 1186, 656), fieldGrey)
		}, false},
	}, func(img image.Image) bool { return FieldAtBottom(img, img.Bounds()) })
}

// The README's first-run pictures are frames of the real window: the
// field shows while models are offered (and while one downloads), not on
// the table shown before Ollama answers.
func TestFieldAtBottomOnTheREADMEPictures(t *testing.T) {
	for name, want := range map[string]bool{
		"first-run-no-models.png":  true,
		"first-run-pulling.png":    true,
		"first-run-no-ollama.png":  false,
		"first-run-downloaded.png": false,
	} {
		f, err := os.Open(filepath.Join("..", "..", "docs", "screenshots", name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := FieldAtBottom(img, img.Bounds()); got != want {
			t.Errorf("%s: FieldAtBottom = %v, want %v", name, got, want)
		}
	}
}
