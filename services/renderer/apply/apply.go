// Package apply makes a rendered NGINX config live safely: it writes the
// config to a fresh versioned directory, runs `nginx -t` on it, swaps a
// symlink atomically, reloads NGINX and confirms that the new version
// answers before calling it done. On any failure the previous config stays
// (or is put back) live.
//
// On disk, under the NGINX prefix:
//
//	conf/<version>/   one complete config per version (nginx.conf, apps/, version.conf, config-version.conf, .hash)
//	live              symlink to conf/<version>: NGINX always runs live/nginx.conf
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
)

// Result is what one Apply did, with its timings.
type Result struct {
	Outcome   string // one of events.Outcome*
	Version   uint64 // version live after the attempt
	Attempted uint64 // version the attempt tried to make live
	Hash      string
	// RoutingHash is the live config's render.Config.RoutingHash, with
	// the certificate files' identity: equal on nodes serving the same
	// state.
	RoutingHash string
	Apps        int
	Err         error
	Render      time.Duration
	Validate    time.Duration
	Reload      time.Duration
}

// Applier owns the config directories of one NGINX node.
type Applier struct {
	prefix  string
	opts    render.Options
	sup     *nginx.Supervisor
	confirm time.Duration
	client  *http.Client
	log     zerolog.Logger

	version uint64 // live version; 0 = none yet
	last    uint64 // highest version attempted; never reused, so a version answering is proof
	hash    string // hash of the live config
	routing string // its routing hash; empty until known (first Apply)
}

// LiveConf is the main config path NGINX is started with under prefix.
func LiveConf(prefix string) string { return filepath.Join(prefix, "live", "nginx.conf") }

// New prepares an Applier and picks up the version left live by an earlier
// run, so versions keep increasing across restarts.
func New(opts render.Options, sup *nginx.Supervisor, confirmTimeout time.Duration, log zerolog.Logger) (*Applier, error) {
	a := &Applier{
		prefix:  opts.Prefix,
		opts:    opts,
		sup:     sup,
		confirm: confirmTimeout,
		client:  &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		log:     log.With().Str("component", "apply").Logger(),
	}
	// NGINX creates only the last element of its log and temp paths.
	for _, d := range []string{"conf", "logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(a.prefix, d), 0o755); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}
	if target, err := os.Readlink(filepath.Join(a.prefix, "live")); err == nil {
		if v, err := strconv.ParseUint(filepath.Base(target), 10, 64); err == nil {
			a.version, a.last = v, v
			if h, err := os.ReadFile(filepath.Join(a.prefix, target, ".hash")); err == nil {
				a.hash = string(h)
			}
		}
	}
	return a, nil
}

// Version is the live config version.
func (a *Applier) Version() uint64 { return a.version }

// SetSyslog changes where the next renders send NGINX's access log
// (render.Options.Syslog; empty: a local file).
func (a *Applier) SetSyslog(addr string) { a.opts.Syslog = addr }

// Certs is what the renderer knows of certificates for one Apply.
type Certs struct {
	// Identity names the certificate files the config points at (see
	// tlsfiles.Identity): a new certificate under the same path changes
	// it, and NGINX reloads although the config text is the same.
	Identity string
	// Awaiting are the domains of TLS apps left out for want of a usable
	// certificate; they still answer ACME challenges (see
	// render.Options.AwaitingCerts).
	Awaiting []string
}

// Apply renders apps and makes the result live unless it is byte-identical
// to the live config, uses the same certificate files, and NGINX is
// running. Apply is not safe for concurrent use; the renderer calls it
// from one loop.
func (a *Applier) Apply(ctx context.Context, apps []events.RoutingState, certs Certs) Result {
	res := Result{Version: a.version, Attempted: a.version, Apps: len(apps)}
	t0 := time.Now()
	opts := a.opts
	opts.AwaitingCerts = certs.Awaiting
	cfg, err := render.Render(apps, opts)
	res.Render = time.Since(t0)
	if err != nil {
		res.Outcome, res.Err = events.OutcomeInvalid, err
		return res
	}
	if certs.Identity != "" {
		sum := sha256.Sum256([]byte(cfg.Hash + "\n" + certs.Identity))
		cfg.Hash = hex.EncodeToString(sum[:])
		sum = sha256.Sum256([]byte(cfg.RoutingHash + "\n" + certs.Identity))
		cfg.RoutingHash = hex.EncodeToString(sum[:])
	}
	res.Hash = cfg.Hash
	res.RoutingHash = a.routing
	if cfg.Hash == a.hash && a.version > 0 {
		a.routing = cfg.RoutingHash
		res.RoutingHash = a.routing
		if a.sup.Running() {
			res.Outcome = events.OutcomeUnchanged
			return res
		}
		// Same config, but NGINX is down (e.g. after a restart of the
		// renderer): start it on the live config and confirm.
		t1 := time.Now()
		err := a.startOrReload(ctx, a.version)
		res.Reload = time.Since(t1)
		if err != nil {
			res.Outcome, res.Err = events.OutcomeFailed, err
			return res
		}
		res.Outcome = events.OutcomeApplied
		return res
	}

	a.last++
	v := a.last
	res.Attempted = v
	dir, err := a.stage(v, cfg)
	if err != nil {
		res.Outcome, res.Err = events.OutcomeFailed, err
		return res
	}
	t1 := time.Now()
	err = a.sup.Test(ctx, filepath.Join(dir, "nginx.conf"))
	res.Validate = time.Since(t1)
	if err != nil {
		_ = os.RemoveAll(dir)
		res.Outcome, res.Err = events.OutcomeInvalid, err
		return res
	}
	prev := a.version
	if err := a.swap(v); err != nil {
		_ = os.RemoveAll(dir)
		res.Outcome, res.Err = events.OutcomeFailed, err
		return res
	}
	t2 := time.Now()
	err = a.startOrReload(ctx, v)
	res.Reload = time.Since(t2)
	if err != nil {
		res.Outcome, res.Err = events.OutcomeFailed, err
		a.rollback(ctx, prev, dir)
		return res
	}
	a.version, a.hash, a.routing = v, cfg.Hash, cfg.RoutingHash
	res.Version, res.RoutingHash = v, a.routing
	res.Outcome = events.OutcomeApplied
	a.prune()
	return res
}

// stage writes the config and its version into conf/<v>.
func (a *Applier) stage(v uint64, cfg render.Config) (string, error) {
	dir := a.dir(v)
	_ = os.RemoveAll(dir) // a leftover of an attempt that never went live
	files := render.VersionFiles(v)
	files[".hash"] = []byte(cfg.Hash)
	for name, b := range cfg.Files {
		files[name] = b
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("stage %d: %w", v, err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("stage %d: %w", v, err)
		}
	}
	return dir, nil
}

func (a *Applier) dir(v uint64) string {
	return filepath.Join(a.prefix, "conf", strconv.FormatUint(v, 10))
}

// swap points the live symlink at conf/<v> with one rename.
func (a *Applier) swap(v uint64) error {
	tmp := filepath.Join(a.prefix, "live.tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("conf", strconv.FormatUint(v, 10)), tmp); err != nil {
		return fmt.Errorf("swap to %d: %w", v, err)
	}
	if err := os.Rename(tmp, filepath.Join(a.prefix, "live")); err != nil {
		return fmt.Errorf("swap to %d: %w", v, err)
	}
	return nil
}

// startOrReload makes NGINX run the live config and waits until it answers
// with version v.
//
// After a reload, the workers of the old config may still accept a few
// connections until they handle the master's stop signal; it also waits
// (within the confirm timeout) until none of them does, so once v is
// reported live no new connection reaches the old config.
func (a *Applier) startOrReload(ctx context.Context, v uint64) error {
	var old []int
	if a.sup.Running() {
		old, _ = a.sup.AcceptingWorkers()
		if err := a.sup.Reload(); err != nil && !errors.Is(err, nginx.ErrNotRunning) {
			return err
		}
	}
	if !a.sup.Running() {
		if err := a.sup.Start(); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := a.waitLive(ctx, v); err != nil {
		return err
	}
	return a.waitOldWorkers(ctx, old, a.confirm-time.Since(start))
}

// waitOldWorkers waits at most d until none of the workers in old still
// accepts connections.
func (a *Applier) waitOldWorkers(ctx context.Context, old []int, d time.Duration) error {
	if len(old) == 0 {
		return nil
	}
	deadline := time.Now().Add(max(d, 0))
	for {
		now, ok := a.sup.AcceptingWorkers()
		if !ok || !slices.ContainsFunc(now, func(pid int) bool { return slices.Contains(old, pid) }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workers of the previous config still accept connections after %s", a.confirm)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped before the previous config's workers stopped accepting: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitLive polls the status server until it reports version v, for at most
// the confirm timeout.
func (a *Applier) waitLive(ctx context.Context, v uint64) error {
	want := strconv.FormatUint(v, 10)
	url := "http://" + LocalStatus(a.opts.StatusListen) + "/_orchestry/version"
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, a.confirm)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		if got, err := a.fetch(ctx, url); err != nil {
			last = err.Error()
		} else if got == want {
			return nil
		} else {
			last = "version " + got
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("version %s: stopped before NGINX confirmed it: %w", want, parent.Err())
			}
			return fmt.Errorf("version %s not live within %s (last: %s)", want, a.confirm, last)
		case <-tick.C:
		}
	}
}

func (a *Applier) fetch(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// rollback puts version prev back live after a failed attempt.
func (a *Applier) rollback(ctx context.Context, prev uint64, failed string) {
	if prev == 0 {
		_ = os.Remove(filepath.Join(a.prefix, "live"))
		_ = os.RemoveAll(failed)
		return
	}
	if err := a.swap(prev); err != nil {
		a.log.Error().Err(err).Msg("rollback: swap back failed")
		return
	}
	_ = os.RemoveAll(failed)
	if err := a.startOrReload(ctx, prev); err != nil {
		ev := a.log.Error()
		if ctx.Err() != nil {
			ev = a.log.Warn() // stopping: the next start serves live/ anyway
		}
		ev.Err(err).Uint64("version", prev).Msg("rollback: previous config not live")
	}
}

// prune removes config directories older than the previous live one (kept
// for a look at what changed).
func (a *Applier) prune() {
	entries, err := os.ReadDir(filepath.Join(a.prefix, "conf"))
	if err != nil {
		return
	}
	var vs []uint64
	for _, e := range entries {
		if v, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	kept := 0
	for _, v := range vs {
		if v < a.version {
			if kept++; kept > 1 {
				_ = os.RemoveAll(a.dir(v))
			}
		}
	}
}

// LocalStatus is the address this host reaches the status server at: the
// listen address, or loopback when it listens on every interface.
func LocalStatus(listen string) string {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ap.Addr().IsUnspecified() {
		return listen
	}
	if ap.Addr().Is6() {
		return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()).String()
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port()).String()
}
