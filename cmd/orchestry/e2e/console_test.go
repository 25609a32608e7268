package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// consoleBound is how long the console may take to show a change: a
// functional bound (the event must arrive and the page must apply it), not
// a speed requirement.
const consoleBound = 15 * time.Second

// requireChromium returns the path of a Chromium (or Chrome) binary. It
// skips without one, unless ORCHESTRY_REQUIRE_INTEGRATION=1 makes that a
// failure.
func requireChromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("chromium is required (ORCHESTRY_REQUIRE_INTEGRATION=1) but not installed: scripts/ensure-chromium")
	}
	t.Skip("chromium not installed (scripts/ensure-chromium, or apt-get install -y chromium); skipping the web console test")
	return ""
}

// artifactDir is where screenshots go: $ORCHESTRY_ARTIFACTS, else the
// repository's artifacts/ (gitignored), so a CI run keeps them too.
func artifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ORCHESTRY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "artifacts") // from cmd/orchestry/e2e
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab, with what the page reported:
// uncaught exceptions and console or browser errors.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
	errors     []string
}

// newBrowser starts headless Chromium at 1280x800 for at most the test's
// bound; it is closed when the test ends.
func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("lang", "en-US"),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to start its setuid/namespace sandbox as root
		// ("Running as root without --no-sandbox is not supported"); CI and
		// containers run the tests as root. The page is our own console on
		// loopback, so nothing untrusted runs without the sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	b := &browser{t: t, ctx: bctx}
	if err := chromedp.Listen(bctx, b.observe); err != nil {
		t.Fatalf("chromium (%s) does not start: %v", exe, err)
	}
	return b
}

// observe records what the page reports; it runs in chromedp's event loop
// and must not block.
func (b *browser) observe(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.exceptions = append(b.exceptions, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			b.errors = append(b.errors, fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.errors = append(b.errors, "console.error: "+strings.Join(parts, " "))
		}
	}
}

// reported returns the exceptions and errors so far.
func (b *browser) reported() (exceptions, errors []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.exceptions...), append([]string(nil), b.errors...)
}

// run runs actions in the tab, failing the test on an error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) (T, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
}

// waitJS polls the page (every 100 ms, at most d) until the JavaScript
// expression is truthy, and returns how long that took.
func (b *browser) waitJS(what, expr string, d time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err == nil {
		return time.Since(start)
	}
	text, _ := eval[string](b, "document.body.innerText")
	b.screenshot("console-failure.png")
	b.t.Fatalf("console: %s: not seen within %s (%v); the page shows:\n%s", what, d, err, text)
	return 0
}

// screenshot saves the viewport as a PNG in the artifact directory.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(artifactDir(b.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("console screenshot: %s", path)
	return path
}

// checkSSEParser feeds the page's event-stream parser awkward chunks: a
// CRLF split across two reads, an event split mid-field, two data lines,
// a comment (the keepalive) and an event that keeps the last id.
func checkSSEParser(t *testing.T, b *browser) {
	t.Helper()
	got, err := eval[string](b, `(() => {
		const events = [], comments = [];
		const p = new OrchestrySSE.Parser((e) => events.push(e), (c) => comments.push(c));
		for (const chunk of [": keepalive\r", "\n\r\nid: 7\nevent: io.x.v1\ndata: {\"a\":", "1}\ndata: 2\r\n\r", "\ndata: next\n\n"]) {
			p.push(chunk);
		}
		return JSON.stringify({events, comments});
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"events":[{"id":"7","event":"io.x.v1","data":"{\"a\":1}\n2"},{"id":"7","event":"message","data":"next"}],"comments":["keepalive"]}`
	if got != want {
		t.Errorf("SSE parser:\n got %s\nwant %s", got, want)
	}
}

// paceTraffic sends a request to port every interval (at most n in all)
// until the returned stop is called, so the console has traffic to chart.
func paceTraffic(t *testing.T, port int, interval time.Duration, n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		defer client.CloseIdleConnections()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range n {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
				resp.Body.Close()
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// TestConsoleShowsHealthLive opens the web console in headless Chromium
// against the whole stack (routing, health, metrics, a renderer with its
// NGINX, real backends), checks that it lists the app with its instances
// healthy, its traffic and the NGINX node, then kills a backend and waits
// for the page, without a reload, to show that instance unhealthy.
func TestConsoleShowsHealthLive(t *testing.T) {
	exe := requireChromium(t)
	s := newStack(t, withHealthService, withMetricsService)
	port := freePort(t)
	s.putApp("shop", port, healthCheckYAML)
	ids := []string{"shop-1", "shop-2", "shop-3"}
	bs := make([]*backend, len(ids))
	for i, id := range ids {
		bs[i] = startBackend(t, id)
		s.addBackend("shop", bs[i])
	}
	waitServes(t, port, ids...)
	stopTraffic := paceTraffic(t, port, 25*time.Millisecond, 8000)
	defer stopTraffic()

	// The console's files need no token; the API still does.
	resp, err := http.Get(s.api + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /ui/ without a token: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if code, _ := s.do(http.MethodGet, "/v1/apps", "", ""); code != http.StatusOK {
		t.Fatalf("GET /v1/apps with the token: %d", code)
	}
	resp, err = http.Get(s.api + "/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/apps without a token: %d, want 401", resp.StatusCode)
	}

	b := newBrowser(t, exe)
	base := s.api // routing serves the console, the API and the event stream
	b.run("set the viewport", chromedp.EmulateViewport(1280, 800))

	// A wrong token: the page asks for another one.
	b.run("open the console with a wrong token", chromedp.Navigate(base+"/ui/index.html#token=wrong"))
	b.waitJS("the sign-in form after a refused token", `(() => {
		const f = document.getElementById("login");
		return !f.hidden && /refused/.test(document.getElementById("login-error").textContent) &&
			sessionStorage.getItem("orchestry.console.token") === null && location.hash === "";
	})()`, consoleBound)
	checkSSEParser(t, b)

	b.run("open the console", chromedp.Navigate(base+"/ui/#token="+testToken))

	b.waitJS("the token taken from the fragment and removed from the address bar",
		`location.hash === "" && sessionStorage.getItem("orchestry.console.token") !== null`, consoleBound)
	b.waitJS("the app listed", `!!document.querySelector('article[data-app="shop"]')`, consoleBound)
	b.waitJS("its three instances healthy", `(() => {
		const rows = [...document.querySelectorAll('tr[data-app="shop"][data-instance]')];
		return rows.length === 3 && rows.every(r => r.dataset.state === "healthy" && r.innerText.includes("healthy"));
	})()`, consoleBound)
	b.waitJS("the event stream connected", `document.getElementById("stream").dataset.state === "live"`, consoleBound)
	b.waitJS("the NGINX node with its live config", `(() => {
		const r = document.querySelector('tr[data-node="e2e"]');
		return !!r && /v\d+/.test(r.innerText) && ["applied", "unchanged"].includes(r.dataset.outcome);
	})()`, consoleBound)
	b.waitJS("the app's traffic charted", `(() => {
		const card = document.querySelector('article[data-app="shop"]');
		return !!card.querySelector('path.chart-line.series-rps') && /req\/s/.test(card.innerText);
	})()`, consoleBound)

	// A backend dies: its health check fails, the health service publishes
	// instance.health, and the stream brings it to the page.
	bs[1].Kill()
	took := b.waitJS("shop-2 unhealthy after its backend was killed", `(() => {
		const r = document.querySelector('tr[data-app="shop"][data-instance="shop-2"]');
		return !!r && r.dataset.state === "unhealthy" && r.innerText.includes("unhealthy");
	})()`, consoleBound)
	t.Logf("the console showed shop-2 unhealthy %s after its backend was killed", took.Round(10*time.Millisecond))
	b.waitJS("the health event in the recent events", `!!document.querySelector('#events li[data-type="instance.health"]')`, consoleBound)
	still, err := eval[int](b, `document.querySelectorAll('tr[data-app="shop"][data-state="healthy"]').length`)
	if err != nil || still != 2 {
		t.Errorf("healthy instances shown after one died: %d (%v), want 2", still, err)
	}
	if live, _ := eval[bool](b, `document.getElementById("stream").dataset.state === "live"`); !live {
		t.Error("the event stream is not live at the end")
	}
	if inline, _ := eval[int](b, `document.querySelectorAll("script:not([src])").length`); inline != 0 {
		t.Errorf("%d inline scripts", inline)
	}

	time.Sleep(time.Second) // one more chart tick, for the picture
	b.screenshot("console.png")

	exceptions, errs := b.reported()
	for _, e := range exceptions {
		t.Errorf("page exception: %s", e)
	}
	for _, e := range errs {
		if strings.Contains(e, "Content Security Policy") {
			t.Errorf("CSP violation: %s", e)
		} else {
			t.Logf("page reported: %s", e)
		}
	}
}
