package plot

import (
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/statefile"
	"github.com/vramkeeper/vramkeeper/manager/timeline"
)

// WriteFile draws a window into path as an SVG or a PNG, as its extension
// says (.svg, .png), for `vramkeeper history --plot FILE`. The file is
// written beside path and renamed into place, so a failed write never
// leaves half a picture.
func WriteFile(path string, w timeline.Window, o Options) error {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if format != "svg" && format != "png" {
		return fmt.Errorf("plot %s: unknown format %q: name the file .svg or .png", path, filepath.Ext(path))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := Encode(tmp, format, Layout(w, o)); err != nil {
		tmp.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	// CreateTemp makes the file private; a picture is not.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := statefile.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// Encode writes a chart as "svg" or "png".
func Encode(w io.Writer, format string, c *Chart) error {
	switch format {
	case "svg":
		return c.WriteSVG(w)
	case "png":
		if err := png.Encode(w, c.Image(1)); err != nil {
			return fmt.Errorf("encode png: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown plot format %q (svg or png)", format)
}
