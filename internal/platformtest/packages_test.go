//go:build linux

package platformtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// EnvRpmFile and EnvDebFile are the packages as files on this machine.
	EnvRpmFile = "VRAMKEEPER_RPM_FILE"
	EnvDebFile = "VRAMKEEPER_DEB_FILE"
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

// TestRpmMatchesTheDeb: no RPM distribution is reachable from here, so the
// .rpm is checked against the .deb that TestDebInFreshDebian installs:
// rpm itself verifies its digests, installs it into an empty root and
// erases it without leaving a file; it carries the same files with the
// same modes and bytes; the installed binary runs; and it declares as
// many dependencies and recommendations as the .deb (nfpm.yaml's rpm
// overrides name Fedora's packages, which must follow the Debian list).
func TestRpmMatchesTheDeb(t *testing.T) {
	rpmFile, debFile := os.Getenv(EnvRpmFile), os.Getenv(EnvDebFile)
	if rpmFile == "" || debFile == "" {
		t.Skipf("runs from scripts/deb-test.sh (%s and %s unset)", EnvRpmFile, EnvDebFile)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(string(out), 4000))
		}
		return string(out)
	}
	if out := run("rpm", "-K", "--nosignature", rpmFile); !strings.Contains(out, "digests OK") {
		t.Errorf("rpm -K: %s", out)
	}

	deb := t.TempDir()
	run("dpkg-deb", "-x", debFile, deb)
	root := t.TempDir()
	inRoot := func(args ...string) string {
		t.Helper()
		return run("rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
	}
	inRoot("--initdb")
	// --nodeps: the root is empty (the dependencies are Fedora's names);
	// the package has no scripts.
	inRoot("-i", "--nodeps", rpmFile)
	want, got := payload(t, deb), payload(t, root)
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if got[p] != want[p] {
			t.Errorf("%s: rpm installs %q, the .deb %q", p, got[p], want[p])
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			t.Errorf("the rpm installs %s, which the .deb does not", p)
		}
	}
	if out := run(filepath.Join(root, "usr/bin/vramkeeper"), "version"); !strings.Contains(out, "(linux/amd64") {
		t.Errorf("the binary the rpm installed: vramkeeper version = %q", out)
	}

	depends := strings.Split(strings.TrimSpace(run("dpkg-deb", "-f", debFile, "Depends")), ", ")
	recommends := strings.Split(strings.TrimSpace(run("dpkg-deb", "-f", debFile, "Recommends")), ", ")
	var requires []string
	for _, l := range strings.Split(strings.TrimSpace(run("rpm", "-qp", "--requires", rpmFile)), "\n") {
		if !strings.HasPrefix(l, "rpmlib(") { // rpm's own format features
			requires = append(requires, l)
		}
	}
	recommendsRpm := strings.Fields(run("rpm", "-qp", "--recommends", rpmFile))
	if len(requires) != len(depends) || len(recommendsRpm) != len(recommends) {
		t.Errorf("the rpm requires %v and recommends %v; the .deb depends on %v and recommends %v: one list per package manager, kept in step",
			requires, recommendsRpm, depends, recommends)
	}

	inRoot("-e", "vramkeeper")
	if left := payload(t, root); len(left) > 0 {
		t.Errorf("rpm -e left %v", slices.Sorted(maps.Keys(left)))
	}
}

// payload maps each regular file under root, outside rpm's own database,
// to its mode and digest.
func payload(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && rel == "var/lib/rpm" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files["/"+rel] = fmt.Sprintf("%v %x", fi.Mode().Perm(), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
