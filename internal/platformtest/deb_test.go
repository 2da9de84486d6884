//go:build linux

package platformtest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ollamatest"
)

// Set by scripts/deb-test.sh.
const (
	// EnvDebRoot is a fresh Debian chroot, mounted, with network.
	EnvDebRoot = "VRAMKEEPER_DEB_ROOT"
	// EnvDeb is the .deb, as a path inside that chroot.
	EnvDeb = "VRAMKEEPER_DEB"
)

// TestDebInFreshDebian: `apt install ./vramkeeper_*.deb` on a Debian with
// nothing but the minimal base pulls what the window needs (every library
// the binary links resolves), and the installed `vramkeeper models` lists
// the test server's models.
func TestDebInFreshDebian(t *testing.T) {
	root, deb := os.Getenv(EnvDebRoot), os.Getenv(EnvDeb)
	if root == "" || deb == "" {
		t.Skipf("runs from scripts/deb-test.sh (%s and %s unset)", EnvDebRoot, EnvDeb)
	}
	in := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		env := []string{root, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "HOME=/root"}
		out, err := exec.CommandContext(ctx, "chroot", append(env, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := in(10*time.Minute, "sh", "-c", "apt-get update -qq && apt-get install -y -qq "+deb); err != nil {
		t.Fatalf("apt install %s: %v\n%s", deb, err, tail(out, 4000))
	}
	out, err := in(time.Minute, "ldd", "/usr/bin/vramkeeper")
	if err != nil || strings.Contains(out, "not found") {
		t.Fatalf("the installed binary's libraries: %v\n%s", err, out)
	}
	for _, f := range []string{"/usr/share/applications/io.github.vramkeeper.desktop", "/usr/lib/systemd/user/vramkeeper.service",
		"/usr/share/icons/hicolor/512x512/apps/io.github.vramkeeper.png"} {
		if _, err := os.Stat(root + f); err != nil {
			t.Errorf("the package did not install %s: %v", f, err)
		}
	}

	srv := ollamatest.Start(t)
	for name, spec := range tinySpecs {
		srv.Create(t, name, spec)
	}
	out, err = in(time.Minute, "vramkeeper", "models", "--ollama", srv.URL.String(), "--state-dir", "/tmp/vk-state", "--listen", "127.0.0.1:1")
	if err != nil {
		t.Fatalf("vramkeeper models: %v\n%s", err, out)
	}
	for name := range tinySpecs {
		if !strings.Contains(out, name) {
			t.Errorf("vramkeeper models does not list %s:\n%s", name, out)
		}
	}
	if out, err := in(time.Minute, "vramkeeper", "version"); err != nil || !strings.Contains(out, "(linux/amd64") {
		t.Errorf("vramkeeper version: %v %q", err, out)
	}
}
