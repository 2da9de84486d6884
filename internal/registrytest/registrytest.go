// Package registrytest runs a local model registry for tests of pulls:
// Debian's docker-registry (the CNCF distribution registry) on loopback,
// behind a small front. Ollama's pull wants every blob download answered
// with a redirect to another host, as ollama.com sends it to a CDN
// (without one it fails with "http: no Location header in response"): the
// front redirects blob GETs for 127.0.0.1 to localhost, and passes the
// rest on. It can also hold blob downloads halfway, so that a test sees a
// pull's progress and cancels it.
package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// Environment the package reads.
const (
	// EnvBinary points at the registry binary (default: docker-registry on
	// PATH, as Debian's docker-registry package installs it).
	EnvBinary = "VRAMKEEPER_REGISTRY_BIN"
	// EnvRequire "1" fails a test that finds no registry binary instead of
	// skipping it (scripts/test.sh installs it and sets this).
	EnvRequire = "VRAMKEEPER_REQUIRE_REGISTRY"
)

// Registry is a running registry and its front.
type Registry struct {
	// Host is the front's address, "127.0.0.1:PORT": models are named
	// Host + "/library/NAME:TAG".
	Host string

	mu sync.Mutex
	// stall, when set, holds blob downloads halfway until closed.
	stall chan struct{}
	// stalled receives a value when a download is held.
	stalled chan struct{}
}

// blobPath is a blob download's path.
var blobPath = regexp.MustCompile(`^/v2/.+/blobs/sha256:[0-9a-f]{64}$`)

// Start starts a registry with its storage in a temp dir and the front
// before it, both stopped when the test ends. Without a registry binary it
// skips the test (fails it with VRAMKEEPER_REQUIRE_REGISTRY=1).
func Start(t testing.TB) *Registry {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("docker-registry"); err != nil {
			if os.Getenv(EnvRequire) == "1" {
				t.Fatalf("registry required (%s=1) but docker-registry is not installed: apt-get install docker-registry (scripts/deps.sh)", EnvRequire)
			}
			t.Skip("skipping: no docker-registry (apt-get install docker-registry, or scripts/deps.sh)")
		}
	}
	dir := t.TempDir()
	inner, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), inner)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("registry log (%s):\n%s", logPath, tailOf(b, 4<<10))
		}
	})
	if err := waitUp(inner, exited); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("registry on %s: %v\n%s", inner, err, tailOf(b, 4<<10))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Registry{Host: ln.Addr().String(), stalled: make(chan struct{}, 16)}
	target := &url.URL{Scheme: "http", Host: inner}
	// The registry builds upload URLs from the Host it is asked for, the
	// front's: the proxy keeps the client's Host header.
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Handler: r.front(proxy, target), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// front redirects blob downloads asked of 127.0.0.1 to localhost (another
// host name for the same front), holds them when asked, and passes
// everything else to the registry.
func (r *Registry) front(proxy http.Handler, target *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet || !blobPath.MatchString(req.URL.Path) {
			proxy.ServeHTTP(w, req)
			return
		}
		host, port, _ := net.SplitHostPort(req.Host)
		if host == "127.0.0.1" {
			http.Redirect(w, req, "http://"+net.JoinHostPort("localhost", port)+req.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		r.mu.Lock()
		stall := r.stall
		r.mu.Unlock()
		if stall == nil {
			proxy.ServeHTTP(w, req)
			return
		}
		r.serveHalf(w, req, target, stall)
	})
}

// serveHalf sends the first half of a blob download, then waits for stall
// to close (and sends the rest) or for the client to leave.
func (r *Registry) serveHalf(w http.ResponseWriter, req *http.Request, target *url.URL, stall chan struct{}) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = target.Scheme, target.Host, ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	n, _ := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if _, err := io.CopyN(w, resp.Body, n/2); err != nil {
		return
	}
	http.NewResponseController(w).Flush()
	select {
	case r.stalled <- struct{}{}:
	default:
	}
	select {
	case <-stall:
		_, _ = io.Copy(w, resp.Body)
	case <-req.Context().Done():
	}
}

// Stall holds blob downloads halfway from now on, until release.
func (r *Registry) Stall() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.stall = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.stall = nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

// Stalled receives a value each time a download is held halfway.
func (r *Registry) Stalled() <-chan struct{} { return r.stalled }

// Name is a model's name in this registry: "127.0.0.1:PORT/library/NAME".
func (r *Registry) Name(model string) string { return r.Host + "/library/" + model }

// Push copies the model local of the Ollama at ollamaURL to name (a name in
// this registry) and pushes it there, as `ollama cp` and `ollama push
// --insecure` do.
func Push(ctx context.Context, ollamaURL *url.URL, local, name string) error {
	c := api.NewClient(ollamaURL, &http.Client{})
	if err := c.Copy(ctx, &api.CopyRequest{Source: local, Destination: name}); err != nil {
		return fmt.Errorf("ollama cp %s %s: %w", local, name, err)
	}
	if err := c.Push(ctx, &api.PushRequest{Model: name, Insecure: true}, func(api.ProgressResponse) error { return nil }); err != nil {
		return fmt.Errorf("ollama push --insecure %s: %w", name, err)
	}
	return nil
}

func waitUp(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("the registry exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not up after 30s: %w", err)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, bounded
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tailOf(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
