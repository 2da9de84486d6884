package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzLoad: whatever the config file holds, Load returns settings the app
// can run with (every value valid, defaults where the file was wrong), and
// a file Load accepts whole comes back the same after Save.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"",
		"budget = \"7GiB\"\nmax_loaded = 3\ncontext_length = 8192\npolicy = \"gdsf\"\n",
		"budget = \"80%\"\nvram = \"12GiB\"\npinned = [\"nomic-embed-text:latest\"]\n",
		"listen = \"0.0.0.0:11435\"\n",
		"listen = \"0.0.0.0:11435\"\ntoken = \"s\"\nallow_admin = true\n",
		"max_loaded = -1\nbudget = \"lots\"\n",
		"[tasks.code_generation]\nprefer = [\"coder\"]\n[roles.architect]\nsize_weight = 0.2\n",
		"budget = \n",
		"[[tasks]]\n",
		"ollama_url = \"http://[::1]:11434\"\nbusy_grace_seconds = 30\n",
		"budget = \"1e400GiB\"\nvram = \"-8GiB\"\n",
		"taks = 1\nmax_loaded = 2\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Load returned settings that do not validate: %v\nfile:\n%s\nload error: %v", verr, data, err)
		}
		if err != nil {
			return
		}
		if err := Save(path, c); err != nil {
			t.Fatalf("Save: %v", err)
		}
		back, err := Load(path)
		if err != nil {
			t.Fatalf("a saved config does not load: %v\nfrom:\n%s", err, data)
		}
		if !reflect.DeepEqual(normalized(back), normalized(c)) {
			t.Fatalf("round trip changed the settings:\n%+v\n%+v", c, back)
		}
	})
}

// normalized treats nil and empty collections alike (TOML has no nil).
func normalized(c Config) Config {
	if len(c.Pinned) == 0 {
		c.Pinned = nil
	}
	if len(c.Tasks) == 0 {
		c.Tasks = nil
	}
	if len(c.Roles) == 0 {
		c.Roles = nil
	}
	return c
}
