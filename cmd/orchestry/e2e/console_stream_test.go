package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchestry/orchestry/services/routing/console"
)

// TestConsoleStreamReconnects checks the console's event-stream client in
// Chromium against a stream that breaks: it sends the bearer token, reads
// the events, and when the connection ends reconnects (after its back-off)
// with Last-Event-ID, so it gets only what it missed.
func TestConsoleStreamReconnects(t *testing.T) {
	exe := requireChromium(t)
	var (
		mu    sync.Mutex
		calls []http.Header
	)
	mux := http.NewServeMux()
	mux.Handle("/ui/", console.Handler())
	mux.HandleFunc("/v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Header.Clone())
		n := len(calls)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // two events, a keepalive, then the connection breaks
			fmt.Fprint(w, "retry: 2000\n\nid: 1\nevent: io.orchestry.test.v1\ndata: {\"n\":1}\n\n: keepalive\n\nid: 2\nevent: io.orchestry.test.v1\ndata: {\"n\":2}\n\n")
		case 2: // an error answer: the client waits and tries again
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default: // what the client missed, and the stream stays open
			fmt.Fprint(w, "id: 3\nevent: io.orchestry.test.v1\ndata: {\"n\":3}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := newBrowser(t, exe)
	b.run("open the console", chromedp.Navigate(srv.URL+"/ui/"))
	b.run("start a stream", chromedp.Evaluate[chromedp.Void](`(() => {
		OrchestrySSE.Stream.MIN_BACKOFF_MS = 100;
		window.got = [];
		window.states = [];
		window.testStream = new OrchestrySSE.Stream({
			url: () => "/v1/events/stream",
			headers: () => ({ Authorization: "Bearer s3cret" }),
			onEvent: (e) => window.got.push(e.id + ":" + e.event + ":" + JSON.parse(e.data).n),
			onStatus: (s) => window.states.push(s.state),
		});
		window.testStream.start();
	})()`))
	b.waitJS("three events, across two reconnections", `window.got.length === 3`, consoleBound)
	got, err := eval[string](b, `window.got.join(",") + " / " + window.states.join(",")`)
	if err != nil {
		t.Fatal(err)
	}
	want := "1:io.orchestry.test.v1:1,2:io.orchestry.test.v1:2,3:io.orchestry.test.v1:3"
	if !strings.HasPrefix(got, want+" / ") {
		t.Errorf("events and states: %s, want the events %s", got, want)
	}
	if !strings.Contains(got, "live,waiting,connecting,waiting,connecting,live") {
		t.Errorf("stream states: %s", got)
	}
	_, _ = eval[bool](b, `window.testStream.stop(), true`)
	time.Sleep(100 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("%d connections, want 3", len(calls))
	}
	for i, h := range calls {
		if h.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("connection %d: Authorization %q", i+1, h.Get("Authorization"))
		}
		if !strings.Contains(h.Get("Accept"), "text/event-stream") {
			t.Errorf("connection %d: Accept %q", i+1, h.Get("Accept"))
		}
	}
	if v := calls[0].Get("Last-Event-ID"); v != "" {
		t.Errorf("first connection sent Last-Event-ID %q", v)
	}
	for i := 1; i < 3; i++ {
		if v := calls[i].Get("Last-Event-ID"); v != "2" {
			t.Errorf("reconnection %d: Last-Event-ID %q, want 2", i, v)
		}
	}
}
