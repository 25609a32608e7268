package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// get answers one request through Mount, in front of an "API" that
// refuses everything without a token, as routing's does.
func get(t *testing.T, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Mount(api).ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndexWithoutTokenAndWithCSP(t *testing.T) {
	for _, p := range []string{"/ui", "/ui/", "/ui/index.html"} {
		r := get(t, http.MethodGet, p, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, r.StatusCode)
		}
		if got := r.Header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP %q", p, got)
		}
		for _, must := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(r.Header.Get("Content-Security-Policy"), must) {
				t.Errorf("%s: CSP lacks %s", p, must)
			}
		}
		if strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
			t.Errorf("CSP allows inline or eval: %s", CSP)
		}
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", p, got)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q", p, got)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		b := body(t, r)
		if !strings.Contains(b, "<title>Orchestry console</title>") {
			t.Errorf("%s: not the console page", p)
		}
		// No inline script: every <script> has a src on this origin.
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(b, -1) {
			if !strings.Contains(tag, `src="/ui/`) {
				t.Errorf("inline or foreign script: %s", tag)
			}
		}
		if strings.Contains(b, "http://") || strings.Contains(b, "https://") {
			t.Errorf("%s: the page names another origin", p)
		}
	}
}

func TestAssetsFingerprintedAndCached(t *testing.T) {
	page := body(t, get(t, http.MethodGet, "/ui/", nil))
	refs := regexp.MustCompile(`"/ui/([a-z]+\.(?:js|css|svg))\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page names %d fingerprinted assets, want the scripts, the style sheet and the icon: %v", len(refs), refs)
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	for _, ref := range refs {
		name, v := ref[1], ref[2]
		r := get(t, http.MethodGet, "/ui/"+name+"?v="+v, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", name, r.StatusCode)
		}
		if got := r.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
			t.Errorf("%s: Cache-Control %q", name, got)
		}
		if got := r.Header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP %q", name, got)
		}
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: nosniff missing", name)
		}
		ext := name[strings.LastIndex(name, "."):]
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, types[ext]) {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		// Without its fingerprint (or with an old one) it is revalidated.
		r = get(t, http.MethodGet, "/ui/"+name+"?v=0000", nil)
		if got := r.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s with a stale fingerprint: Cache-Control %q", name, got)
		}
		etag := r.Header.Get("ETag")
		if r := get(t, http.MethodGet, "/ui/"+name, map[string]string{"If-None-Match": etag}); r.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", name, r.StatusCode)
		}
	}
}

func TestUnknownAssetIs404(t *testing.T) {
	for _, p := range []string{"/ui/nope.js", "/ui/static/console.js", "/ui/../console.go", "/ui/x/index.html"} {
		r := get(t, http.MethodGet, p, nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
		if r.Header.Get("Content-Security-Policy") != CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: 404 without the security headers", p)
		}
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	if r := get(t, http.MethodHead, "/ui/", nil); r.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %d", r.StatusCode)
	}
	r := get(t, http.MethodPost, "/ui/", nil)
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
}

func TestEverythingElseGoesToTheAPI(t *testing.T) {
	for _, p := range []string{"/v1/apps", "/uix", "/", "/v1/ui"} {
		if r := get(t, http.MethodGet, p, nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without token: %d, want the API's 401", p, r.StatusCode)
		}
	}
	if r := get(t, http.MethodGet, "/v1/apps", map[string]string{"Authorization": "Bearer x"}); r.StatusCode != http.StatusTeapot {
		t.Errorf("/v1/apps with token: %d, want the API's answer", r.StatusCode)
	}
}

// TestAssetsStaySelfContained guards what the CSP also enforces: nothing is
// loaded from another origin, and no script builds HTML from strings or
// code from text.
func TestAssetsStaySelfContained(t *testing.T) {
	h := Handler().(*handler)
	for name, a := range h.assets {
		text := strings.ReplaceAll(string(a.body), "http://www.w3.org/2000/svg", "") // a namespace, not a fetch
		if strings.Contains(text, "http://") || strings.Contains(text, "https://") || strings.Contains(text, "//cdn") {
			t.Errorf("%s names another origin", name)
		}
		if strings.HasSuffix(name, ".js") {
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s uses %s", name, bad)
				}
			}
		}
		if strings.HasSuffix(name, ".css") && (strings.Contains(text, "@import") || strings.Contains(text, "url(")) {
			t.Errorf("%s loads more files", name)
		}
	}
}
