package renderer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// replyHeadroom is kept free in an answer for the envelope of the JSON
// (node, version, hash, omitted paths).
const replyHeadroom = 16 << 10

// serveLiveConfig answers requests on events.RendererConfig(node) with the
// live config under the NGINX prefix (events.NodeConfig, JSON) until the
// returned subscription is unsubscribed. The files are read from disk at
// each request, so the answer is what NGINX runs, whatever the render
// loop is doing.
func serveLiveConfig(nc *nats.Conn, node, prefix string, log zerolog.Logger) (*nats.Subscription, error) {
	subject := events.RendererConfig(node)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		limit := int(nc.MaxPayload()) - replyHeadroom
		cfg := readLiveConfig(prefix, node, limit)
		if cfg.Error != "" {
			log.Warn().Str("error", cfg.Error).Msg("live config request")
		}
		b, err := json.Marshal(cfg)
		if err == nil {
			err = m.Respond(b)
		}
		if err != nil {
			log.Warn().Err(err).Msg("answer live config request")
			return
		}
		log.Debug().Uint64("version", cfg.Version).Int("files", len(cfg.Files)).Int("omitted", len(cfg.Omitted)).Msg("live config sent")
	})
	if err != nil {
		return nil, fmt.Errorf("renderer: subscribe %s: %w", subject, err)
	}
	return sub, nil
}

// readLiveConfig reads the config the live symlink under prefix points at:
// every regular file, sorted by path, except the hash file and anything
// that looks like a certificate or a key. From the first file that would
// take the answer over limit bytes (0: no limit), the files are named in
// Omitted instead. A node without a
// live config answers version 0 and no files.
func readLiveConfig(prefix, node string, limit int) events.NodeConfig {
	out := events.NodeConfig{Node: node, Files: []events.ConfigFile{}}
	target, err := os.Readlink(filepath.Join(prefix, "live"))
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	if err != nil {
		out.Error = fmt.Sprintf("read live link: %v", err)
		return out
	}
	v, err := strconv.ParseUint(filepath.Base(target), 10, 64)
	if err != nil {
		out.Error = fmt.Sprintf("live link points at %q, not a version", target)
		return out
	}
	dir := target
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(prefix, target)
	}
	var files []events.ConfigFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && secretPath(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || rel == ".hash" || secretPath(rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, events.ConfigFile{Path: rel, Content: string(b)})
		return nil
	})
	if err != nil {
		// A render pruned the version between the link and the walk: the
		// next request reads the new one.
		out.Error = fmt.Sprintf("read live config %d: %v", v, err)
		return out
	}
	out.Version = v
	if h, err := os.ReadFile(filepath.Join(dir, ".hash")); err == nil {
		out.Hash = strings.TrimSpace(string(h))
	}
	// WalkDir visits in lexical order within each directory; sort on the
	// whole path so "apps/x.conf" and "apps.conf" order the same way
	// everywhere.
	slices.SortFunc(files, func(a, b events.ConfigFile) int { return strings.Compare(a.Path, b.Path) })
	used := 0
	for _, f := range files {
		b, _ := json.Marshal(f)
		if limit > 0 && (len(out.Omitted) > 0 || used+len(b) > limit) {
			out.Omitted = append(out.Omitted, f.Path)
			continue
		}
		used += len(b) + 1
		out.Files = append(out.Files, f)
	}
	return out
}

// secretPath reports whether a config-relative path may hold key
// material: anything under a certs directory and any certificate or key
// file, which the answer never carries.
func secretPath(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if part == "certs" {
			return true
		}
	}
	switch strings.ToLower(path.Ext(rel)) {
	case ".crt", ".key", ".pem", ".p12", ".pfx", ".der", ".csr":
		return true
	}
	return false
}
