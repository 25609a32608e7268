package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultAPIURL is the API's address when nothing else names one: routing's
// default ORCHESTRY_API_ADDR, which the all-in-one uses too.
const DefaultAPIURL = "http://127.0.0.1:8000"

// configHelp is the part of the root command's help that says where the
// connection settings come from.
const configHelp = `Connection (first found wins, per setting):
  1. --api URL and --token TOKEN
  2. ORCHESTRY_API_URL and ORCHESTRY_API_TOKEN
  3. the config file $XDG_CONFIG_HOME/orchestry/config.yaml (~/.config/orchestry/config.yaml),
     with the keys api_url and token; it must not be readable by group or others (chmod 600)
  4. the URL http://$ORCHESTRY_API_ADDR when that is set, else ` + DefaultAPIURL + `; the token of
     the all-in-one in $ORCHESTRY_DATA_DIR/api-token (.data/api-token: what "make run" uses)`

// FileConfig is the content of the config file.
type FileConfig struct {
	APIURL string `yaml:"api_url"`
	Token  string `yaml:"token"`
}

// Connection is where the API is and how to authenticate, with where each
// setting came from (for error messages; the token itself is never shown).
type Connection struct {
	URL         string
	Token       string
	URLSource   string
	TokenSource string
}

// env is what the connection settings are resolved from; the zero fields
// take the process's own.
type env struct {
	getenv        func(string) string
	userConfigDir func() (string, error)
}

func (e env) get(k string) string {
	if e.getenv == nil {
		return os.Getenv(k)
	}
	return e.getenv(k)
}

// configPath is the config file's path.
func (e env) configPath() (string, error) {
	dir := e.userConfigDir
	if dir == nil {
		dir = os.UserConfigDir
	}
	d, err := dir()
	if err != nil {
		return "", fmt.Errorf("config directory: %w", err)
	}
	return filepath.Join(d, "orchestry", "config.yaml"), nil
}

// resolve returns the connection from the flags (empty when not given),
// the environment, the config file and the defaults, in that order.
func (e env) resolve(flagURL, flagToken string) (Connection, error) {
	c := Connection{URL: flagURL, Token: flagToken}
	if c.URL != "" {
		c.URLSource = "--api"
	}
	if c.Token != "" {
		c.TokenSource = "--token"
	}
	if c.URL == "" {
		if c.URL = e.get("ORCHESTRY_API_URL"); c.URL != "" {
			c.URLSource = "ORCHESTRY_API_URL"
		}
	}
	if c.Token == "" {
		if c.Token = e.get("ORCHESTRY_API_TOKEN"); c.Token != "" {
			c.TokenSource = "ORCHESTRY_API_TOKEN"
		}
	}
	if c.URL == "" || c.Token == "" {
		path, err := e.configPath()
		if err == nil {
			fc, found, err := readConfigFile(path)
			if err != nil {
				return Connection{}, err
			}
			if found && c.URL == "" && fc.APIURL != "" {
				c.URL, c.URLSource = fc.APIURL, path
			}
			if found && c.Token == "" && fc.Token != "" {
				c.Token, c.TokenSource = fc.Token, path
			}
		}
	}
	if c.URL == "" {
		c.URL, c.URLSource = DefaultAPIURL, "default"
		if addr := e.get("ORCHESTRY_API_ADDR"); addr != "" {
			c.URL, c.URLSource = "http://"+dialable(addr), "ORCHESTRY_API_ADDR"
		}
	}
	if c.Token == "" {
		dir := e.get("ORCHESTRY_DATA_DIR")
		if dir == "" {
			dir = ".data"
		}
		path := filepath.Join(dir, "api-token")
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
			c.Token, c.TokenSource = strings.TrimSpace(string(b)), path
		}
	}
	u, err := normalizeURL(c.URL)
	if err != nil {
		return Connection{}, &ExitError{Code: ExitUsage, Err: fmt.Errorf("API URL from %s: %w", c.URLSource, err)}
	}
	c.URL = u
	return c, nil
}

// readConfigFile reads the config file at path; found is false when there
// is none. A file that group or others may read is refused: it holds a
// bearer token.
func readConfigFile(path string) (FileConfig, bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileConfig{}, false, nil
	}
	if err != nil {
		return FileConfig{}, false, fmt.Errorf("config file: %w", err)
	}
	if err := checkPrivate(path, st.Mode()); err != nil {
		return FileConfig{}, false, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, false, fmt.Errorf("config file: %w", err)
	}
	var fc FileConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return FileConfig{}, false, &ExitError{Code: ExitUsage, Err: fmt.Errorf("config file %s: %w", path, err)}
	}
	return fc, true, nil
}

// checkPrivate refuses a file readable or writable by group or others.
func checkPrivate(path string, mode fs.FileMode) error {
	if mode.Perm()&0o077 != 0 {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf(
			"refusing to read the config file %s: its mode is %04o, so group or others can read the API token in it; run: chmod 600 %s",
			path, mode.Perm(), path)}
	}
	return nil
}

// normalizeURL accepts "host:port" as "http://host:port" and drops a
// trailing slash.
func normalizeURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("invalid URL %q: the scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("invalid URL %q: no host", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":8000", "0.0.0.0:8000") becomes the loopback address.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
