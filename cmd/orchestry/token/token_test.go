package token

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateKeepsTheTokenPrivateAndStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "api-token")
	first, created, err := LoadOrCreate(path)
	if err != nil || !created || len(first) != 64 {
		t.Fatalf("first: %q created=%v err=%v", first, created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created || again != first {
		t.Fatalf("second: %q created=%v err=%v", again, created, err)
	}
}
