package cli_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/vramkeeper/vramkeeper/internal/cli"
	"github.com/vramkeeper/vramkeeper/internal/ggufgen"
	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

const gib = 1 << 30

// onTree points the card readers at a copied machine (manager/gpu's
// testdata), as HOST_SYS and HOST_PROC do for a container.
func onTree(t *testing.T, tree string) {
	dir := filepath.Join("..", "..", "manager", "gpu", "testdata", "trees", tree)
	t.Setenv("HOST_SYS", filepath.Join(dir, "sys"))
	t.Setenv("HOST_PROC", filepath.Join(dir, "proc"))
	t.Setenv("HOST_ROOT", filepath.Join(dir, "root"))
}

// Issue 17's acceptance through the command line, against a real Ollama:
// an 8 GiB amdgpu card with 3 GiB held by a game is read as such, the
// estimates count the GPU's graph and driver overhead before any load, a
// model that needs more than the room beside the game is refused, and a
// second card is listed with its size.
func TestCLIOnAMDCards(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Ollama")
	}
	srv := ollamatest.Start(t)
	// 4 KiB of KV cache per token and a graph that grows with the
	// context: about 5.7 GiB at 384k tokens, more than the 4.6 GiB beside
	// the game and less than the 7 GiB budget.
	srv.Create(t, "long:latest", ggufgen.Spec{Arch: "llama", Layers: 4, Embd: 256, Heads: 4, KVHeads: 4, FFN: 512,
		Vocab: ggufgen.MinVocab, ContextLength: 1 << 20, WeightType: "F16"})
	dir := t.TempDir()
	cmd := func(args ...string) []string {
		return append(args, "--ollama", srv.URL.String(), "--state-dir", dir, "--config", filepath.Join(dir, "config.toml"),
			"--ctx", "393216", "--listen", "127.0.0.1:1")
	}

	onTree(t, "rx7600")
	var st cli.StatusJSON
	code, out, errs := run(t, cmd("status", "--json")...)
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d: %s%s", code, out, errs)
	}
	if st.Source != "amdgpu" || st.TotalBytes != 8*gib || st.BudgetBytes != 7*gib || len(st.Cards) != 1 ||
		st.Cards[0].Name != "AMD Radeon RX 7600" || st.Cards[0].SourceLabel != "amdgpu (kernel)" {
		t.Errorf("status --json = %s", out)
	}
	if st.OtherBytes < 3*gib || st.OtherBytes > 3*gib+256<<20 || st.Cards[0].OtherBytes != st.OtherBytes {
		t.Errorf("other programs %d (card: %d), want about 3 GiB", st.OtherBytes, st.Cards[0].OtherBytes)
	}

	var models []struct {
		Name      string `json:"name"`
		Estimate  uint64 `json:"estimate_bytes"`
		Breakdown struct {
			Graph    uint64 `json:"graph"`
			Overhead uint64 `json:"overhead"`
		} `json:"breakdown"`
	}
	code, out, errs = run(t, cmd("models", "--json")...)
	if code != 0 || json.Unmarshal([]byte(out), &models) != nil || len(models) != 1 {
		t.Fatalf("models: exit %d: %s%s", code, out, errs)
	}
	long := models[0]
	if long.Breakdown.Graph == 0 || long.Breakdown.Overhead == 0 {
		t.Errorf("estimate %+v without the GPU's graph and overhead before any load", long)
	}
	room := st.TotalBytes - st.OtherBytes - 256<<20 // the default safety margin
	if long.Estimate <= room || long.Estimate > st.BudgetBytes {
		t.Fatalf("long:latest needs %d at 384k tokens: the test wants more than the %d beside the game, within the budget", long.Estimate, room)
	}
	if code, _, errs := run(t, cmd("load", "long:latest")...); code != cli.ExitNeverFits {
		t.Errorf("load beside the game: exit %d (%s), want %d", code, errs, cli.ExitNeverFits)
	}
	if ps := srv.Running(t); len(ps) != 0 {
		t.Errorf("Ollama loaded %v though it did not fit beside the game", ps)
	}

	onTree(t, "two-amd")
	code, out, errs = run(t, cmd("status", "--json")...)
	st = cli.StatusJSON{}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d: %s%s", code, out, errs)
	}
	if len(st.Cards) != 2 || st.Cards[0].TotalBytes != 8*gib || st.Cards[1].TotalBytes != 12*gib || st.TotalBytes != 20*gib {
		t.Errorf("two cards: status --json = %s", out)
	}
	code, out, _ = run(t, cmd("status")...)
	t.Logf("status on two cards:\n%s", out)
}
