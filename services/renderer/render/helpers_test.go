package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// testOpts are fixed node options, so golden files do not depend on the
// machine; nginx -t runs get real directories through optsIn.
func testOpts() Options {
	return Options{Prefix: "/var/lib/orchestry/nginx", StatusListen: "127.0.0.1:18081", CertDir: "/var/lib/orchestry/certs", WorkerProcesses: 2, Node: "edge-1", Syslog: "127.0.0.1:5514",
		ACMEChallenge: "127.0.0.1:8402"}
}

func state(name string, spec events.AppSpec, insts ...events.Instance) events.RoutingState {
	return events.RoutingState{App: events.App{Metadata: events.Metadata{Name: name}, Spec: spec}, Instances: insts, Revision: 1}
}

func inst(id, ip string, port int) events.Instance {
	return events.Instance{ID: id, IP: ip, Port: port}
}

// writeConfig writes cfg plus version.conf into dir, as the applier does.
func writeConfig(t testing.TB, dir string, cfg Config, version uint64) {
	t.Helper()
	files := VersionFiles(version)
	for k, v := range cfg.Files {
		files[k] = v
	}
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// nginxBinary returns the nginx binary, skipping the test when there is
// none unless ORCHESTRY_REQUIRE_INTEGRATION=1.
func nginxBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr == nil {
			return "/usr/sbin/nginx"
		}
		if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("nginx not found on PATH and ORCHESTRY_REQUIRE_INTEGRATION=1: %v", err)
		}
		t.Skipf("nginx not found on PATH (%v); set ORCHESTRY_REQUIRE_INTEGRATION=1 to make this a failure", err)
	}
	return bin
}

// nginxTest renders states for a fresh prefix, writes certificates for
// the TLS apps and runs nginx -t on the result. A non-empty syslog sends the
// access log there, as with a metrics service.
func nginxTest(t *testing.T, states []events.RoutingState, syslog string) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	opts := Options{
		Prefix:          filepath.Join(dir, "prefix"),
		StatusListen:    "127.0.0.1:18081",
		CertDir:         filepath.Join(dir, "certs"),
		WorkerProcesses: 1,
		Node:            "edge-1",
		Syslog:          syslog,
		ACMEChallenge:   "127.0.0.1:8402",
	}
	// The applier creates logs/ and temp/; NGINX creates only the last element.
	for _, p := range []string{filepath.Join(opts.Prefix, "logs"), filepath.Join(opts.Prefix, "temp"), opts.CertDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range states {
		if n := s.App.Spec.Networking; n.SSL.Enabled {
			writeCert(t, opts.CertDir, n.Domain)
		}
	}
	cfg, err := Render(states, opts)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	conf := filepath.Join(dir, "conf")
	writeConfig(t, conf, cfg, 7)
	cmd := exec.Command(bin, "-t", "-q", "-e", filepath.Join(opts.Prefix, "logs", "error.log"),
		"-p", opts.Prefix, "-c", filepath.Join(conf, MainFile))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// writeCert writes a self-signed certificate and key for domain into dir.
func writeCert(t testing.TB, dir, domain string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, domain+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, domain+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}
