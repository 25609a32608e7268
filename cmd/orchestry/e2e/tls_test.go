package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// writeWeakCert writes a self-signed pair for domain with a 1024-bit RSA
// key into dir: valid for Go, refused by OpenSSL at its default security
// level.
func writeWeakCert(t *testing.T, dir, domain string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(domain+".crt", "CERTIFICATE", der)
	write(domain+".key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func TestATLSAppWithoutACertificateIsLeftOutWhileTheOthersGoLive(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(1)
	s.drainReports()
	s.putApp("secure", freePort(t), "    domain: secure.example.test\n    ssl:\n      enabled: true\n")
	r := s.waitReport(func(r events.RenderReport) bool { return len(r.Problems) > 0 }, "report of the left-out TLS app")
	if len(r.Problems) != 1 || r.Problems[0].App != "secure" || !strings.Contains(r.Problems[0].Reason, "secure.example.test") {
		t.Fatalf("problems %+v, want the secure app and its missing certificate", r.Problems)
	}
	if r.Outcome == events.OutcomeInvalid || r.Outcome == events.OutcomeFailed {
		t.Fatalf("report %+v: the other apps must still go live", r)
	}
	// The others keep changing: a new instance of web is served.
	s.addInstance("web", 1)
	waitServes(t, port, "demo-1", "demo-2")
	if conf := s.readFile("live/nginx.conf") + s.readFile("live/apps/secure.conf"); strings.Contains(conf, "secure.example.test") {
		t.Fatalf("the left-out app is in the live config:\n%s", conf)
	}
}

func TestATLSAppServesWithAGeneratedDevelopmentCertificateAndHSTS(t *testing.T) {
	s := newStack(t, withSelfSignedCertificates)
	b := startBackend(t, "b1")
	port := freePort(t)
	s.putApp("secure", port, "    domain: secure.example.test\n    ssl:\n      enabled: true\n      hsts: true\n")
	s.addBackend("secure", b)
	s.waitLive("secure", b.Port, true, 15*time.Second)
	s.settle()

	pemCert, err := os.ReadFile(filepath.Join(s.dataDir, "certs", "secure.example.test.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.dataDir, "certs", "secure.example.test.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "secure.example.test", MinVersion: tls.VersionTLS12,
	}}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("TLS request verified against the generated certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Instance") != "b1" {
		t.Fatalf("TLS request: %s from %q", resp.Status, resp.Header.Get("X-Instance"))
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q", hsts)
	}
	// TLS 1.1 is refused.
	old := &tls.Config{RootCAs: roots, ServerName: "secure.example.test", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}
