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

func TestCheckerRemembersUntilAFileChanges(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var c Checker
	if err := c.Check(dir, "a.example.test", now); err == nil {
		t.Fatal("missing files passed")
	}
	if err := WriteSelfSigned(dir, "a.example.test", now); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(dir, "a.example.test", now); err != nil {
		t.Fatalf("new pair: %v", err)
	}
	// Same size and time: remembered. Garbage of the same length with the
	// old time fails Check, but not the Checker.
	crt := CertFile(dir, "a.example.test")
	fi, err := os.Stat(crt)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(crt)
	if err := os.WriteFile(crt, make([]byte, fi.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(crt, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if Check(dir, "a.example.test", now) == nil {
		t.Fatal("garbage passed Check")
	}
	if err := c.Check(dir, "a.example.test", now); err != nil {
		t.Fatalf("unchanged pair checked again: %v", err)
	}
	if err := os.WriteFile(crt, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(crt, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	// Past its validity the remembered result does not hold.
	if err := c.Check(dir, "a.example.test", now.Add(SelfSignedLifetime+time.Hour)); err == nil {
		t.Fatal("an expired pair passed from memory")
	}
	// A changed certificate file is checked again: a pair for another name
	// written over it fails.
	if err := WriteSelfSigned(dir, "b.example.test", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(CertFile(dir, "b.example.test"))
	if err := os.WriteFile(CertFile(dir, "a.example.test"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	_ = os.Chtimes(CertFile(dir, "a.example.test"), later, later)
	if err := c.Check(dir, "a.example.test", now); err == nil {
		t.Fatal("a replaced certificate was not checked again")
	}
}
