// Package ollamatest runs a real Ollama server for tests: the binary built
// from the exact module version go.mod pins (scripts/ollama-build.sh), on a
// free loopback port, with its models and home in the test's temp dir.
//
// Tests that use it skip when no binary is found, so `go test ./...` passes on
// a machine that never built Ollama. CI sets VRAMKEEPER_REQUIRE_OLLAMA=1 to
// turn that skip into a failure.
package ollamatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/ggufgen"

	"github.com/ollama/ollama/api"
)

// Environment variables the package reads.
const (
	// EnvBinary points at an ollama binary to use instead of the cached build.
	EnvBinary = "VRAMKEEPER_OLLAMA_BIN"
	// EnvRequire, set to "1", makes Start fail instead of skip when no binary
	// is found (CI, and anyone checking the integration tests really ran).
	EnvRequire = "VRAMKEEPER_REQUIRE_OLLAMA"
	// EnvCache overrides the cache directory, as scripts/ollama-build.sh does.
	EnvCache = "VRAMKEEPER_CACHE"
	// EnvVersion picks another cached build than the pinned one
	// (scripts/ollama-build.sh v0.24.0 writes it), for running the
	// integration tests against a second server generation. Ignored when
	// EnvBinary is set.
	EnvVersion = "VRAMKEEPER_OLLAMA_VERSION"
)

const (
	ollamaModule = "github.com/ollama/ollama"
	// startTimeout bounds the wait for /api/version. Startup probes the
	// hardware (GPU discovery runs a runner subprocess), which takes a few
	// seconds on a busy 2-core machine.
	startTimeout = 90 * time.Second
	// stopGrace is how long Stop waits after SIGTERM, so Ollama can stop its
	// runner subprocesses itself, before it kills the process group.
	stopGrace = 10 * time.Second
	// logTailBytes is how much of the server log a failed test prints.
	logTailBytes = 8 << 10
)

const buildHint = "build it with `scripts/ollama-build.sh` from the repository root " +
	"(about 9 minutes the first time on 2 cores; see shared/ollama/README.md), " +
	"or point " + EnvBinary + " at an ollama binary"

// Binary finds the ollama binary: $VRAMKEEPER_OLLAMA_BIN if set, else the
// build that scripts/ollama-build.sh caches for $VRAMKEEPER_OLLAMA_VERSION
// or, without it, the version go.mod pins. It never builds: a test must not
// start a 9-minute cgo build.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	p, err := cachedBinaryPath()
	if err != nil {
		return "", err
	}
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("no cached ollama build: %w", err)
	}
	return p, nil
}

// CachedBinary is the build scripts/ollama-build.sh caches for version
// ("v0.24.0"), if there is one.
func CachedBinary(version string) (string, error) {
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	p, err := cachePath(version)
	if err != nil {
		return "", err
	}
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("no cached ollama %s build: %w", version, err)
	}
	return p, nil
}

// cachedBinaryPath is the path scripts/ollama-build.sh writes for
// $VRAMKEEPER_OLLAMA_VERSION, else the pinned version.
func cachedBinaryPath() (string, error) {
	version := os.Getenv(EnvVersion)
	if version == "" {
		v, err := pinnedVersion()
		if err != nil {
			return "", err
		}
		version = v
	} else if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	return cachePath(version)
}

// cachePath is computed as the build script does: $VRAMKEEPER_CACHE, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/vramkeeper, then ollama-<version>/ollama.
func cachePath(version string) (string, error) {
	cache := os.Getenv(EnvCache)
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("locating the ollama cache: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "vramkeeper")
	}
	return filepath.Join(cache, "ollama-"+version, "ollama"), nil
}

// PinnedVersion is the Ollama version go.mod pins, which the cached
// binary is built from (it reports 0.0.0 itself). It runs `go list`, so
// it works inside the module only.
func PinnedVersion() (string, error) { return pinnedVersion() }

// pinnedVersion asks the go command which ollama version the module pins.
// Test binaries carry no dependency list in their build info, so
// runtime/debug cannot answer this; `go list -m` runs in the package's
// directory, inside the module, during `go test`.
func pinnedVersion() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", ollamaModule).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("finding the pinned %s version: %w", ollamaModule, err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("finding the pinned %s version: go list printed nothing", ollamaModule)
	}
	return v, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || !executable(fi.Mode()) {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Server is one running Ollama server owned by a test.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:40123.
	URL *url.URL
	// Host is URL's host:port, the form OLLAMA_HOST takes.
	Host string
	// Client talks to the server. It has no timeout of its own: tests bound
	// calls with contexts.
	Client *api.Client
	// Dir is the server's private directory (models, home, log).
	Dir string
	// LogPath is the file that collects the server's stdout and stderr,
	// across restarts.
	LogPath string
	// Version is what the server's /api/version answered ("0.24.0"), so a
	// test can choose the accounting of that server generation.
	Version string

	bin  string
	proc *process // nil while stopped
}

// Start starts a server on 127.0.0.1 at a free port, with OLLAMA_MODELS and
// HOME in t.TempDir(), waits until GET /api/version answers, and stops it on
// t.Cleanup. It skips the test when no binary is found, unless
// VRAMKEEPER_REQUIRE_OLLAMA=1, in which case it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("ollama binary required (%s=1) but not found: %v\n%s", EnvRequire, err, buildHint)
		}
		t.Skipf("skipping: no ollama binary: %v (%s)", err, buildHint)
	}

	dir := t.TempDir()
	s, err := Launch(bin, dir)
	// Cleanups run last-registered first: stop the server, then print the log
	// tail if the test failed, then (registered by TempDir above) remove dir.
	if s != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("ollama log tail (%s):\n%s", s.LogPath, s.logTail())
			}
		})
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatalf("ollamatest: %v", err)
	}
	return s
}

// Launch starts bin as a server on 127.0.0.1 at a free port, with its model
// store and HOME under dir, and waits until GET /api/version answers. It is
// Start without a test, for commands such as the bench; the caller stops it.
// On error the returned Server (if any) holds the log.
func Launch(bin, dir string) (*Server, error) {
	s := &Server{Dir: dir, LogPath: filepath.Join(dir, "ollama.log"), bin: bin}
	for _, d := range []string{s.modelsDir(), s.homeDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// A free port is found by listening on :0 and closing; another process
	// may take it before Ollama binds, so try a few ports.
	var lastErr error
	for range 3 {
		addr, err := FreeAddr()
		if err != nil {
			return s, err
		}
		s.setAddr(addr)
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(s.logTail(), "address already in use") {
			break
		}
	}
	return s, fmt.Errorf("starting %s: %w", bin, lastErr)
}

func (s *Server) setAddr(hostport string) {
	s.Host = hostport
	s.URL = &url.URL{Scheme: "http", Host: hostport}
	// A plain client: the tests' contexts bound every call.
	s.Client = api.NewClient(s.URL, &http.Client{})
}

func (s *Server) modelsDir() string { return filepath.Join(s.Dir, "models") }
func (s *Server) homeDir() string   { return filepath.Join(s.Dir, "home") }

// env is the server's environment: the test's own, minus any OLLAMA_* the
// developer has set (their OLLAMA_HOST or OLLAMA_MODELS must not leak into a
// test), plus the settings below.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OLLAMA_") || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		// Our port, on loopback only.
		"OLLAMA_HOST="+s.Host,
		// Models go to the test's temp dir, never the developer's store.
		"OLLAMA_MODELS="+s.modelsDir(),
		// HOME holds ~/.ollama (the server's identity key, history); keep it
		// private too so tests do not write into the real home.
		"HOME="+s.homeDir(),
		// One slot per model: KV cache = num_ctx x 1, which is what the
		// estimator tests compare against and the documented default; set
		// explicitly so a different future default cannot change sizes.
		"OLLAMA_NUM_PARALLEL=1",
		// Startup pruning walks the model store and deletes unreferenced
		// blobs; skip it so a Restart keeps blobs a test uploaded but has not
		// yet used in a Create, and starts faster.
		"OLLAMA_NOPRUNE=1",
		// Tests run offline: no cloud models, no sign-in prompts.
		"OLLAMA_NO_CLOUD=1",
		// OLLAMA_KEEP_ALIVE is left at its default on purpose: the code
		// under test sets keep_alive on every request, and the default is
		// what users run with.
	)
}

// start launches the process and waits for /api/version.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The child holds its own descriptor; ours can close after Start.
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== ollamatest: %s serve on %s at %s ===\n", s.bin, s.Host, time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command(s.bin, "serve")
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	cmd.Stdout = logf
	cmd.Stderr = logf
	setProcAttr(cmd)

	began := time.Now()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("exec %s: %w", s.bin, err)
	}
	s.proc = p

	if err := s.waitReady(startTimeout); err != nil {
		s.Stop()
		return err
	}
	fmt.Fprintf(logf, "=== ollamatest: ready after %s ===\n", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitReady polls /api/version until it answers, the process exits, or the
// timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := s.Client.Version(reqCtx)
		reqCancel()
		if err == nil {
			s.Version = v
			return nil
		}
		lastErr = err
		select {
		case <-s.proc.exited:
			return fmt.Errorf("ollama exited before answering /api/version: %v", s.proc.err)
		case <-ctx.Done():
			return fmt.Errorf("ollama did not answer /api/version within %s: %w", timeout, lastErr)
		case <-tick.C:
		}
	}
}

// Stop stops the server: SIGTERM to its PID so it can stop its runners,
// then SIGKILL to its process group after a grace period, and waits for it.
// It is safe to call twice and on a stopped server.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	s.proc.stop(stopGrace)
	s.proc = nil
}

// Restart stops the server and starts it again on the same port with the
// same model directory, as when a user restarts Ollama under the manager.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Relaunch(); err != nil {
		t.Fatal(err)
	}
}

// Relaunch is Restart without a test: it stops the server if it runs and
// starts it again on the same port, with the same models.
func (s *Server) Relaunch() error {
	s.Stop()
	if err := s.start(); err != nil {
		return fmt.Errorf("ollamatest: restarting on %s: %w", s.Host, err)
	}
	return nil
}

// Kill ends the server and its runners at once with SIGKILL, as a crash or
// the OOM killer would: nothing is unloaded cleanly, connections drop. It
// returns once the server process is gone; Relaunch starts it again.
func (s *Server) Kill() {
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// PID is the server's process id, 0 while stopped.
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// CreateModel uploads gguf as a blob and creates model name from it through
// the real API (POST /api/blobs/sha256:..., then POST /api/create with
// Files), the way `ollama create` does, never by writing into the store.
func (s *Server) CreateModel(t testing.TB, name string, gguf []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.CreateModelContext(ctx, name, gguf); err != nil {
		t.Fatalf("ollamatest: %v", err)
	}
}

// CreateModelContext is CreateModel without a test.
func (s *Server) CreateModelContext(ctx context.Context, name string, gguf []byte) error {
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(gguf))
	if err := s.Client.CreateBlob(ctx, digest, bytes.NewReader(gguf)); err != nil {
		return fmt.Errorf("uploading blob %s for %s: %w", digest, name, err)
	}
	return s.createFromBlob(ctx, name, digest)
}

// CreateModelFile is CreateModelContext for a GGUF file too large to hold
// in memory (ggufgen.WriteFile's): it is read twice, to hash and to upload.
func (s *Server) CreateModelFile(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hashing %s for %s: %w", path, name, err)
	}
	digest := fmt.Sprintf("sha256:%x", h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding %s for %s: %w", path, name, err)
	}
	if err := s.Client.CreateBlob(ctx, digest, f); err != nil {
		return fmt.Errorf("uploading %s for %s: %w", path, name, err)
	}
	return s.createFromBlob(ctx, name, digest)
}

// createFromBlob creates model name from the uploaded GGUF blob digest.
func (s *Server) createFromBlob(ctx context.Context, name, digest string) error {
	var last api.ProgressResponse
	err := s.Client.Create(ctx, &api.CreateRequest{
		Model: name,
		// The file name only has to end in .gguf for Ollama to treat it as one.
		Files: map[string]string{"model.gguf": digest},
	}, func(p api.ProgressResponse) error {
		last = p
		return nil
	})
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if last.Status != "success" {
		return fmt.Errorf("creating %s: last status %q, want \"success\"", name, last.Status)
	}
	return nil
}

// Create generates a model from spec (internal/ggufgen) and creates it
// under name, as CreateModel does.
func (s *Server) Create(t testing.TB, name string, spec ggufgen.Spec) {
	t.Helper()
	var b bytes.Buffer
	if err := ggufgen.Write(&b, spec); err != nil {
		t.Fatalf("ollamatest: generating %s: %v", name, err)
	}
	s.CreateModel(t, name, b.Bytes())
}

// Running returns /api/ps, failing the test on error.
func (s *Server) Running(t testing.TB) []api.ProcessModelResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.Client.ListRunning(ctx)
	if err != nil {
		t.Fatalf("ollamatest: /api/ps: %v", err)
	}
	return resp.Models
}

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string { return s.logTail() }

func (s *Server) logTail() string {
	f, err := os.Open(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
		if _, err := f.Seek(-logTailBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(reading log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	return string(b)
}

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens
// on now; another process may take it before the caller binds it.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreeAddrT is FreeAddr for a test, which it fails when there is none.
func FreeAddrT(t testing.TB) string {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
