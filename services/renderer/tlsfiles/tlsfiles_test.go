package tlsfiles

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckAndWriteSelfSigned(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if err := Check(dir, "a.example.test", now); err == nil || !strings.Contains(err.Error(), "a.example.test") {
		t.Fatalf("missing files: %v", err)
	}
	if err := WriteSelfSigned(dir, "a.example.test", now); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir, "a.example.test", now); err != nil {
		t.Fatalf("fresh self-signed pair: %v", err)
	}
	fi, err := os.Stat(KeyFile(dir, "a.example.test"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	for _, tc := range []struct {
		name   string
		domain string
		at     time.Time
		want   string
	}{
		{"expired", "a.example.test", now.Add(SelfSignedLifetime + time.Hour), "not now"},
		{"not yet valid", "a.example.test", now.Add(-time.Hour), "not now"},
	} {
		if err := Check(dir, tc.domain, tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A pair for another name, copied under this one, does not serve it.
	if err := WriteSelfSigned(dir, "b.example.test", now); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{CertFile(dir, "b.example.test"), CertFile(dir, "c.example.test")}, {KeyFile(dir, "b.example.test"), KeyFile(dir, "c.example.test")}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(dir, "c.example.test", now); err == nil || !strings.Contains(err.Error(), "c.example.test") {
		t.Errorf("a certificate for another name: %v", err)
	}
	// A key that does not match the certificate.
	b, _ := os.ReadFile(KeyFile(dir, "a.example.test"))
	if err := os.WriteFile(KeyFile(dir, "c.example.test"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir, "c.example.test", now); err == nil {
		t.Error("a mismatched key passed")
	}
}
