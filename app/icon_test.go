package app

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// column reads the gauge's middle column from the bottom of the scale up:
// how many pixels have the fill colour, and the colour of the lowest one.
func fillHeight(img image.Image, c color.RGBA) int {
	x := (barX0 + barX1) / 2
	n := 0
	for y := barY1 - frame - 1; y >= barY0+frame; y-- {
		if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) != c {
			break
		}
		n++
	}
	return n
}

func TestGaugeIcon(t *testing.T) {
	const gib = 1 << 30
	budget := uint64(8 * gib)
	tests := []struct {
		name    string
		g       Gauge
		percent int
		col     color.RGBA
	}{
		{"empty", Gauge{Used: 0, Budget: budget, Total: budget, Up: true}, 0, ColorOK},
		{"half", Gauge{Used: budget / 2, Budget: budget, Total: budget, Up: true}, 50, ColorOK},
		{"amber past 75", Gauge{Used: budget * 80 / 100, Budget: budget, Total: budget, Up: true}, 80, ColorWarn},
		{"red past 90", Gauge{Used: budget * 95 / 100, Budget: budget, Total: budget, Up: true}, 95, ColorFull},
		{"grey when down", Gauge{Used: budget / 2, Budget: budget, Total: budget, Up: false}, 50, ColorDown},
		{"over budget clamps", Gauge{Used: 2 * budget, Budget: budget, Total: budget, Up: true}, 100, ColorFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.g.Color(); got != tt.col {
				t.Errorf("Color() = %v, want %v", got, tt.col)
			}
			img := GaugeIcon(tt.g)
			if b := img.Bounds(); b.Dx() != IconSize || b.Dy() != IconSize {
				t.Fatalf("size %v, want %dx%d", b, IconSize, IconSize)
			}
			want := (innerH*tt.percent + 50) / 100
			// Within a pixel: the rounding of a byte count that is not an
			// exact fraction may go either way.
			got := fillHeight(img, tt.col)
			if got < want-1 || got > want+1 || (tt.percent == 0 && got != 0) {
				t.Errorf("fill height = %d px, want %d (%d%% of %d)", got, want, tt.percent, innerH)
			}
			want = got
			// Above the fill the scale is empty.
			x, y := (barX0+barX1)/2, barY1-frame-1-want
			if want < innerH {
				if c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA); c != colorEmpty {
					t.Errorf("pixel above the fill = %v, want empty %v", c, colorEmpty)
				}
			}
		})
	}
}

func TestGaugeIconOthersAndBudgetLine(t *testing.T) {
	// A 10-unit card, 8 of budget, 4 ours, 2 others: ours fills 40 % of the
	// scale, others the next 20 %, and the budget line sits at 80 %.
	img := GaugeIcon(Gauge{Used: 4, Others: 2, Budget: 8, Total: 10, Up: true})
	x := (barX0 + barX1) / 2
	bottom := barY1 - frame
	ours := (innerH*40 + 50) / 100
	if got := fillHeight(img, ColorOK); got != ours {
		t.Errorf("our fill = %d, want %d", got, ours)
	}
	if c := color.RGBAModel.Convert(img.At(x, bottom-ours-1)).(color.RGBA); c != colorOthers {
		t.Errorf("above ours = %v, want others colour", c)
	}
	line := bottom - (innerH*80+50)/100
	if c := color.RGBAModel.Convert(img.At(barX0-2, line)).(color.RGBA); c != colorBudgetL {
		t.Errorf("budget line pixel = %v, want %v", c, colorBudgetL)
	}
}

func TestGaugeLayoutOnlyChangesWithPixels(t *testing.T) {
	a := Gauge{Used: 1000, Budget: 8 << 30, Total: 8 << 30, Up: true}
	b := a
	b.Used += 1 << 20 // a MiB is less than a pixel of an 8 GiB scale
	if a.layout() != b.layout() {
		t.Error("a change under one pixel changed the layout; the tray would redraw for nothing")
	}
	b.Used = 4 << 30
	if a.layout() == b.layout() {
		t.Error("half the budget did not change the layout")
	}
}

func TestEncodePNG(t *testing.T) {
	b, err := EncodePNG(AppIcon())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != IconSize {
		t.Errorf("decoded width %d", img.Bounds().Dx())
	}
}

// The Windows tray and installer read ICO files: the header must point at
// the whole PNG and give its size, or LoadImage says "file invalid".
func TestICO(t *testing.T) {
	tests := []struct {
		name string
		size int
		want byte // the entry's width byte: 0 means 256
	}{
		{"tray icon", IconSize, IconSize},
		{"installer icon", 256, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := EncodePNG(image.NewRGBA(image.Rect(0, 0, tt.size, tt.size)))
			if err != nil {
				t.Fatal(err)
			}
			ico, err := ICO(p)
			if err != nil {
				t.Fatal(err)
			}
			le := binary.LittleEndian
			if le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 || le.Uint16(ico[4:]) != 1 {
				t.Fatalf("ICONDIR % x", ico[:6])
			}
			if ico[6] != tt.want || ico[7] != tt.want {
				t.Errorf("entry size %d×%d, want %d", ico[6], ico[7], tt.want)
			}
			n, off := le.Uint32(ico[14:]), le.Uint32(ico[18:])
			if int(n) != len(p) || int(off)+int(n) != len(ico) || !bytes.Equal(ico[off:], p) {
				t.Errorf("entry points at %d bytes from %d in %d; PNG is %d bytes", n, off, len(ico), len(p))
			}
		})
	}
	if _, err := ICO(bytes.Repeat([]byte{1}, 40)); err == nil {
		t.Error("ICO of bytes that are no PNG succeeded")
	}
	big, _ := EncodePNG(image.NewRGBA(image.Rect(0, 0, 300, 300)))
	if _, err := ICO(big); err == nil {
		t.Error("ICO of a 300×300 PNG succeeded")
	}
}
