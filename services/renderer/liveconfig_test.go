package renderer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// writeTree writes files (relative path to content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func livePrefix(t *testing.T) string {
	t.Helper()
	prefix := t.TempDir()
	writeTree(t, filepath.Join(prefix, "conf", "7"), map[string]string{
		"nginx.conf":          "http { include apps/*.conf; }\n",
		"apps/web.conf":       "upstream orchestry_web { server 10.0.0.1:80; }\n",
		"apps/api.conf":       "upstream orchestry_api { server 10.0.0.2:80; }\n",
		"version.conf":        "return 200 7;\n",
		".hash":               "abc123\n",
		"certs/web.crt":       "CERT",
		"certs/web.key":       "KEY",
		"tls/extra.key":       "KEY",
		"tls/chain.pem":       "CERT",
		"config-version.conf": "map $x $orchestry_config_version { default 7; }\n",
	})
	// An older version that must not show.
	writeTree(t, filepath.Join(prefix, "conf", "6"), map[string]string{"nginx.conf": "old\n"})
	if err := os.Symlink(filepath.Join("conf", "7"), filepath.Join(prefix, "live")); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func paths(files []events.ConfigFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

func TestReadLiveConfig(t *testing.T) {
	prefix := livePrefix(t)
	all := []string{"apps/api.conf", "apps/web.conf", "config-version.conf", "nginx.conf", "version.conf"}
	for _, tc := range []struct {
		name    string
		prefix  string
		limit   int
		version uint64
		files   []string
		omitted []string
	}{
		{name: "whole config, no keys", prefix: prefix, limit: 1 << 20, version: 7, files: all},
		{name: "no limit", prefix: prefix, limit: 0, version: 7, files: all},
		{name: "too big for one message", prefix: prefix, limit: 200, version: 7,
			files: []string{"apps/api.conf", "apps/web.conf"}, omitted: []string{"config-version.conf", "nginx.conf", "version.conf"}},
		{name: "no live config yet", prefix: t.TempDir(), limit: 1 << 20, version: 0, files: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readLiveConfig(tc.prefix, "n1", tc.limit)
			if got.Error != "" || got.Node != "n1" || got.Version != tc.version {
				t.Fatalf("%+v", got)
			}
			if !slices.Equal(paths(got.Files), tc.files) || !slices.Equal(got.Omitted, tc.omitted) {
				t.Errorf("files %q omitted %q, want %q and %q", paths(got.Files), got.Omitted, tc.files, tc.omitted)
			}
			if tc.version > 0 && got.Hash != "abc123" {
				t.Errorf("hash %q", got.Hash)
			}
		})
	}
}

func TestSecretPath(t *testing.T) {
	for path, secret := range map[string]bool{
		"nginx.conf": false, "apps/web.conf": false, ".hash": false,
		"certs/a.conf": true, "x/certs/y": true, "web.crt": true, "apps/web.KEY": true, "chain.pem": true,
	} {
		if got := secretPath(path); got != secret {
			t.Errorf("%s: %v, want %v", path, got, secret)
		}
	}
}

func TestServeLiveConfigAnswersOverNATS(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	prefix := livePrefix(t)
	sub, err := serveLiveConfig(srv.ConnectAs(t, events.ServiceRenderer), "n1", prefix, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg, err := srv.ConnectAs(t, events.ServiceRouting).Request(events.RendererConfig("n1"), nil, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got events.NodeConfig
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != 7 || len(got.Files) != 5 || got.Files[1].Content != "upstream orchestry_web { server 10.0.0.1:80; }\n" {
		t.Errorf("%+v", got)
	}
}
