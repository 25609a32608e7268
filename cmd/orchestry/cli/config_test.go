package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveConnection(t *testing.T) {
	type files struct {
		config    string // content of orchestry/config.yaml; empty: none
		mode      os.FileMode
		tokenFile string // content of <data>/api-token; empty: none
	}
	tests := []struct {
		name                 string
		flagURL, flagToken   string
		env                  map[string]string
		files                files
		wantURL, wantToken   string
		wantURLSrc, wantTSrc string
		wantErr              string
		wantCode             int
	}{
		{name: "defaults", wantURL: DefaultAPIURL, wantURLSrc: "default"},
		{name: "flags win", flagURL: "http://a:1/", flagToken: "f", env: map[string]string{"ORCHESTRY_API_URL": "http://b:2", "ORCHESTRY_API_TOKEN": "e"},
			files:   files{config: "api_url: http://c:3\ntoken: c\n", mode: 0o600},
			wantURL: "http://a:1", wantToken: "f", wantURLSrc: "--api", wantTSrc: "--token"},
		{name: "environment over file", env: map[string]string{"ORCHESTRY_API_URL": "http://b:2", "ORCHESTRY_API_TOKEN": "e"},
			files:   files{config: "api_url: http://c:3\ntoken: c\n", mode: 0o600},
			wantURL: "http://b:2", wantToken: "e", wantURLSrc: "ORCHESTRY_API_URL", wantTSrc: "ORCHESTRY_API_TOKEN"},
		{name: "file per setting", env: map[string]string{"ORCHESTRY_API_URL": "http://b:2"},
			files:   files{config: "api_url: http://c:3\ntoken: c\n", mode: 0o600},
			wantURL: "http://b:2", wantToken: "c", wantURLSrc: "ORCHESTRY_API_URL", wantTSrc: "config.yaml"},
		{name: "file readable by others is refused", files: files{config: "token: c\n", mode: 0o644},
			wantErr: "chmod 600", wantCode: ExitUsage},
		{name: "file readable by group is refused", files: files{config: "token: c\n", mode: 0o640},
			wantErr: "group or others", wantCode: ExitUsage},
		{name: "unknown key in file", files: files{config: "api: x\n", mode: 0o600}, wantErr: "field api not found", wantCode: ExitUsage},
		{name: "not needed, not read", flagURL: "http://a:1", flagToken: "f", files: files{config: "token: c\n", mode: 0o644},
			wantURL: "http://a:1", wantToken: "f", wantURLSrc: "--api", wantTSrc: "--token"},
		{name: "all-in-one token file", files: files{tokenFile: "tok\n"}, wantURL: DefaultAPIURL, wantToken: "tok", wantURLSrc: "default", wantTSrc: "api-token"},
		{name: "listen address", env: map[string]string{"ORCHESTRY_API_ADDR": "0.0.0.0:9000"}, wantURL: "http://127.0.0.1:9000", wantURLSrc: "ORCHESTRY_API_ADDR"},
		{name: "host:port without scheme", flagURL: "routing:8000", wantURL: "http://routing:8000", wantURLSrc: "--api"},
		{name: "bad scheme", flagURL: "ftp://x", wantErr: "scheme", wantCode: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgDir := filepath.Join(dir, "config")
			dataDir := filepath.Join(dir, "data")
			if tt.files.config != "" {
				if err := os.MkdirAll(filepath.Join(cfgDir, "orchestry"), 0o700); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(cfgDir, "orchestry", "config.yaml")
				if err := os.WriteFile(p, []byte(tt.files.config), tt.files.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, tt.files.mode); err != nil {
					t.Fatal(err)
				}
			}
			if tt.files.tokenFile != "" {
				if err := os.MkdirAll(dataDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dataDir, "api-token"), []byte(tt.files.tokenFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			vars := map[string]string{"ORCHESTRY_DATA_DIR": dataDir}
			for k, v := range tt.env {
				vars[k] = v
			}
			e := env{getenv: func(k string) string { return vars[k] }, userConfigDir: func() (string, error) { return cfgDir, nil }}
			c, err := e.resolve(tt.flagURL, tt.flagToken)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if got := ExitCode(err); got != tt.wantCode {
					t.Errorf("exit code %d, want %d", got, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.URL != tt.wantURL || c.Token != tt.wantToken || c.URLSource != tt.wantURLSrc || !strings.HasSuffix(c.TokenSource, tt.wantTSrc) {
				t.Errorf("got %+v, want url %s (%s) token %q (%s)", c, tt.wantURL, tt.wantURLSrc, tt.wantToken, tt.wantTSrc)
			}
		})
	}
}

func TestCheckPrivate(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o700, true}, {0o640, false}, {0o604, false}, {0o666, false}, {0o602, false}} {
		err := checkPrivate("/x/config.yaml", tt.mode)
		if (err == nil) != tt.ok {
			t.Errorf("mode %04o: err = %v, want ok=%v", tt.mode, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "refusing to read the config file /x/config.yaml") {
			t.Errorf("mode %04o: message %q does not say why", tt.mode, err)
		}
	}
}
