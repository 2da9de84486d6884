package app

import (
	"image"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteAssets regenerates the committed images from the code that
// draws them: assets/icon.png (the app icon) and assets/screenshots/tray-*.png
// (the tray icon's states, for the README). Run with
// VRAMKEEPER_UPDATE_ASSETS=1 go test ./app -run TestWriteAssets.
func TestWriteAssets(t *testing.T) {
	if os.Getenv("VRAMKEEPER_UPDATE_ASSETS") != "1" {
		t.Skip("set VRAMKEEPER_UPDATE_ASSETS=1 to rewrite assets/")
	}
	const budget = 7 << 30
	write := func(name string, g Gauge, scale int) {
		b, err := EncodePNG(scaleUp(GaugeIcon(g), scale))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join("..", "assets", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("icon.png", Gauge{Used: 60, Budget: 100, Total: 100, Up: true}, 8) // 512 px, as packagers want
	for name, g := range map[string]Gauge{
		"tray-0.png":    {Used: 0, Budget: budget, Total: 8 << 30, Up: true},
		"tray-50.png":   {Used: budget / 2, Budget: budget, Total: 8 << 30, Up: true},
		"tray-80.png":   {Used: budget * 8 / 10, Budget: budget, Total: 8 << 30, Up: true},
		"tray-95.png":   {Used: budget * 95 / 100, Budget: budget, Total: 8 << 30, Up: true},
		"tray-down.png": {Used: budget / 2, Budget: budget, Total: 8 << 30, Up: false},
	} {
		write(filepath.Join("screenshots", name), g, 2)
	}
}

// scaleUp enlarges an image by an integer factor, pixel for pixel (the
// gauge is drawn on a pixel grid; smoothing would blur its edges).
func scaleUp(src image.Image, k int) image.Image {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := 0; y < b.Dy()*k; y++ {
		for x := 0; x < b.Dx()*k; x++ {
			dst.Set(x, y, src.At(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return dst
}
