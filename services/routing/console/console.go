// Package console is Orchestry's live web console: static HTML, CSS and
// plain JavaScript, embedded in the routing binary and served at /ui. The
// assets hold no data and need no token; the page asks the operator for
// the API's bearer token and reads everything (apps, instances and their
// health, NGINX nodes, certificates, traffic and the event stream) from the
// REST API under /v1 with it.
//
// Every response carries a strict Content-Security-Policy (only this
// origin's scripts, styles and connections; no inline script, no eval, no
// framing), X-Content-Type-Options: nosniff and cache headers: the page
// itself is revalidated on every load (ETag), and the assets it names are
// fingerprinted (?v=<hash>), so those are cached for a year.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/ui"

// CSP is the Content-Security-Policy of every console response.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
	// version is the fingerprint the page names the asset with.
	version string
}

// handler serves the embedded assets.
type handler struct {
	assets map[string]asset // by name, "index.html" included
	// modTime is when the binary started: embedded files have none.
	modTime time.Time
}

// Handler returns the console's handler for Prefix and everything under
// it: GET or HEAD of /ui, /ui/ or /ui/index.html is the page, /ui/<name>
// one of its assets, anything else 404. It needs no token.
func Handler() http.Handler {
	h := &handler{assets: map[string]asset{}, modTime: time.Now()}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		h.assets[name] = newAsset(name, body)
		return nil
	})
	if err != nil {
		panic(err) // embedded files are always readable
	}
	// The page names each asset with its fingerprint, so a new binary's
	// page never runs an old cached script.
	index := h.assets["index.html"].body
	for name, a := range h.assets {
		if name != "index.html" {
			index = bytes.ReplaceAll(index, []byte(`"`+Prefix+`/`+name+`"`), []byte(`"`+Prefix+`/`+name+`?v=`+a.version+`"`))
		}
	}
	h.assets["index.html"] = newAsset("index.html", index)
	return h
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	v := hex.EncodeToString(sum[:8])
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return asset{body: body, ctype: ctype, etag: `"` + v + `"`, version: v}
}

// Mount returns a handler that serves the console under Prefix and sends
// every other request to next (the API, which checks the token itself).
func Mount(next http.Handler) http.Handler {
	ui := Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Prefix || strings.HasPrefix(r.URL.Path, Prefix+"/") {
			ui.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok || strings.Contains(name, "/") {
		hd.Set("Cache-Control", "no-store")
		http.Error(w, "no such console asset: "+r.URL.Path, http.StatusNotFound)
		return
	}
	switch {
	case name != "index.html" && r.URL.Query().Get("v") == a.version:
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		// The page, and an asset asked for without its fingerprint:
		// always revalidated, answered 304 while unchanged.
		hd.Set("Cache-Control", "no-cache")
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, name, h.modTime, bytes.NewReader(a.body))
}
