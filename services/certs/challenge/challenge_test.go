package challenge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func TestProviderAndHandler(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	kv, err := js.KeyValue(context.Background(), events.BucketACMEChallenges)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProvider(kv, 5*time.Second)
	if err := p.Present("shop.example.com", "tok_en-1", "tok_en-1.thumbprint"); err != nil {
		t.Fatal(err)
	}
	if err := p.Present("shop.example.com", "bad/token", "x"); err == nil {
		t.Fatal("a token with '/' was accepted")
	}
	h := httptest.NewServer(Handler(kv, zerolog.Nop()))
	defer h.Close()
	for _, tc := range []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"known token", http.MethodGet, Path + "tok_en-1", http.StatusOK, "tok_en-1.thumbprint"},
		{"unknown token", http.MethodGet, Path + "nope", http.StatusNotFound, ""},
		{"token not base64url", http.MethodGet, Path + "a.b", http.StatusNotFound, ""},
		{"other path", http.MethodGet, "/", http.StatusNotFound, ""},
		{"not a GET", http.MethodPost, Path + "tok_en-1", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.body != "" && string(b) != tc.body {
				t.Fatalf("body %q, want %q", b, tc.body)
			}
		})
	}
	if err := p.CleanUp("shop.example.com", "tok_en-1", ""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(h.URL + Path + "tok_en-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after clean-up: %d", resp.StatusCode)
	}
}
