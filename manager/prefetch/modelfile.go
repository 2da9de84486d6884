package prefetch

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ollama/ollama/parser"
)

// ErrNoPath: the Modelfile names no weight file on disk (a model pulled by
// name only, or a cloud model).
var ErrNoPath = errors.New("modelfile names no weight file")

// ModelPaths returns the weight files a Modelfile loads, in order: the
// model's own GGUF first, then projectors. Ollama's /api/show answers with
// such a Modelfile, its FROM lines holding blob paths in the server's model
// store, so on the same machine these are the files to prefetch. Only
// absolute paths count: a FROM with a model name is no file.
func ModelPaths(modelfile string) ([]string, error) {
	mf, err := parser.ParseFile(strings.NewReader(modelfile))
	if err != nil {
		return nil, fmt.Errorf("parsing modelfile: %w", err)
	}
	var out []string
	for _, c := range mf.Commands {
		if c.Name == "model" && filepath.IsAbs(c.Args) {
			out = append(out, filepath.Clean(c.Args))
		}
	}
	if len(out) == 0 {
		return nil, ErrNoPath
	}
	return out, nil
}
