// Package pebbletest runs Pebble, Let's Encrypt's test ACME CA, and
// pebble-challtestsrv (its DNS, answering 127.0.0.1 for every name) on
// loopback for tests, built from the module version pinned in
// services/certs/go.mod. Validation is real: Pebble fetches HTTP-01 tokens
// from 127.0.0.1 on the port it is given.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Module is the pinned Pebble module.
const Module = "github.com/letsencrypt/pebble/v2"

// bins are the built programs and the module's source directory (for its
// test certificates).
var bins struct {
	once               sync.Once
	pebble, chall, dir string
	err                error
}

// build builds pebble and pebble-challtestsrv once per process into a
// directory shared by test processes (each binary written under a
// temporary name and renamed, so concurrent builds do not collide).
func build() error {
	bins.once.Do(func() {
		// `go mod download` fetches the module when the cache is new
		// (`go list -m` would then print no directory) and prints where
		// it is.
		out, err := exec.Command("go", "mod", "download", "-json", Module).Output()
		if err != nil {
			bins.err = fmt.Errorf("go mod download %s: %v: %s", Module, err, out)
			return
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			bins.err = fmt.Errorf("go mod download %s: no directory in %s (%v)", Module, out, err)
			return
		}
		bins.dir = mod.Dir
		dest := filepath.Join(os.TempDir(), "orchestry-pebble")
		if err := os.MkdirAll(dest, 0o755); err != nil {
			bins.err = err
			return
		}
		for bin, pkg := range map[*string]string{&bins.pebble: Module + "/cmd/pebble", &bins.chall: Module + "/cmd/pebble-challtestsrv"} {
			*bin = filepath.Join(dest, filepath.Base(pkg))
			tmp := fmt.Sprintf("%s.%d", *bin, os.Getpid())
			if out, err := exec.Command("go", "build", "-o", tmp, pkg).CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
			if err := os.Rename(tmp, *bin); err != nil {
				bins.err = err
				return
			}
		}
	})
	return bins.err
}

// require skips the test when Pebble cannot be built, unless
// ORCHESTRY_REQUIRE_INTEGRATION=1 makes that a failure.
func require(t testing.TB) {
	t.Helper()
	err := build()
	if err == nil {
		return
	}
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("pebble is required (ORCHESTRY_REQUIRE_INTEGRATION=1): %v", err)
	}
	t.Skipf("pebble could not be built (%v); set ORCHESTRY_REQUIRE_INTEGRATION=1 to make this a failure", err)
}

// freePort returns a loopback TCP port free now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeDNSPort returns a loopback port free now for both TCP and UDP.
func freeDNSPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := freePort(t)
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no port free for TCP and UDP")
	return 0
}

// Pebble is one Pebble CA and its DNS server, on loopback.
type Pebble struct {
	t        testing.TB
	config   string
	dns      string
	dirPort  int
	mgmtPort int
	cmd      *exec.Cmd
	log      *syncBuffer
}

// New configures a Pebble whose HTTP-01 validation connects to
// 127.0.0.1:http01Port, whose "shortlived" profile lasts shortLived, and
// starts its DNS server; Start starts Pebble itself.
func New(t testing.TB, http01Port int, shortLived time.Duration) *Pebble {
	t.Helper()
	require(t)
	p := &Pebble{t: t, dirPort: freePort(t), mgmtPort: freePort(t)}
	p.dns = "127.0.0.1:" + strconv.Itoa(freeDNSPort(t))
	chall := exec.Command(bins.chall, "-dnsserver", p.dns, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-management", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	var clog syncBuffer
	chall.Stdout, chall.Stderr = &clog, &clog
	if err := chall.Start(); err != nil {
		t.Fatalf("start challtestsrv: %v", err)
	}
	waitTCP(t, p.dns, &clog)
	t.Cleanup(func() {
		_ = chall.Process.Kill()
		_ = chall.Wait()
		if t.Failed() {
			t.Logf("challtestsrv log:\n%s", clog.String())
		}
	})
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(p.dirPort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(p.mgmtPort),
		"certificate":                    filepath.Join(bins.dir, "test/certs/localhost/cert.pem"),
		"privateKey":                     filepath.Join(bins.dir, "test/certs/localhost/key.pem"),
		"httpPort":                       http01Port,
		"tlsPort":                        freePort(t),
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default":    map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600},
			"shortlived": map[string]any{"description": "short", "validityPeriod": int(shortLived / time.Second)},
		},
	}}
	raw, _ := json.Marshal(cfg)
	p.config = filepath.Join(t.TempDir(), "pebble.json")
	if err := os.WriteFile(p.config, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// CABundle is the file of the root Pebble's directory TLS certificate
// chains to.
func (p *Pebble) CABundle() string { return filepath.Join(bins.dir, "test/certs/pebble.minica.pem") }

// Directory is Pebble's ACME directory URL.
func (p *Pebble) Directory() string { return fmt.Sprintf("https://127.0.0.1:%d/dir", p.dirPort) }

// Start runs Pebble and waits until its directory answers.
func (p *Pebble) Start() {
	t := p.t
	t.Helper()
	p.cmd = exec.Command(bins.pebble, "-config", p.config, "-dnsserver", p.dns)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.log = &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	client := p.Client()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(p.Directory())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pebble not ready within 60s:\n%s", p.log.String())
}

// Stop ends Pebble (all its state is in memory).
func (p *Pebble) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	if p.t.Failed() {
		p.t.Logf("pebble log:\n%s", p.log.String())
	}
	p.cmd = nil
}

// Client is an HTTP client trusting Pebble's own TLS certificate.
func (p *Pebble) Client() *http.Client {
	pem, err := os.ReadFile(p.CABundle())
	if err != nil {
		p.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// Roots is the pool of Pebble's current root, from its management port.
func (p *Pebble) Roots() *x509.CertPool {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/roots/0", p.mgmtPort), nil)
	resp, err := p.Client().Do(req)
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root is not PEM: %q", b)
	}
	return pool
}

// SetRenewalWindow makes Pebble's renewal information for the leaf of
// chainPEM suggest [start, end].
func (p *Pebble) SetRenewalWindow(chainPEM string, start, end time.Time) {
	t := p.t
	t.Helper()
	ari, _ := json.Marshal(map[string]any{"suggestedWindow": map[string]time.Time{"start": start.UTC(), "end": end.UTC()}})
	body, _ := json.Marshal(map[string]string{"Certificate": chainPEM, "ARIResponse": string(ari)})
	resp, err := p.Client().Post(fmt.Sprintf("https://127.0.0.1:%d/set-renewal-info/", p.mgmtPort), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("set renewal info: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("set renewal info: %d %s", resp.StatusCode, b)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitTCP waits until addr accepts connections.
func waitTCP(t testing.TB, addr string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not listening within 10s:\n%s", addr, log.String())
}
