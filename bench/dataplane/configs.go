package main

// The configs under test: rendered by the render package, or hand-written.

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/render"
)

// renderedConfig renders the app with the render package into
// prefix/conf, as the renderer would, and returns the main config's path.
func renderedConfig(prefix string, v *variant, status int, backends []string, workers int, syslog string) (string, error) {
	s := events.RoutingState{
		App: events.App{
			Metadata: events.Metadata{Name: appName},
			Spec:     events.AppSpec{Networking: events.Networking{ExternalPort: v.port}},
		},
		Revision: 1,
	}
	for i, a := range backends {
		ap, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return "", err
		}
		s.Instances = append(s.Instances, events.Instance{ID: fmt.Sprintf("b%d", i+1), IP: ap.IP.String(), Port: ap.Port})
	}
	opts := render.Options{
		Prefix:          prefix,
		StatusListen:    fmt.Sprintf("127.0.0.1:%d", status),
		CertDir:         filepath.Join(prefix, "certs"),
		WorkerProcesses: workers,
		ListenIP:        "127.0.0.1",
	}
	if v.log == logSyslog {
		opts.Syslog = syslog
	}
	cfg, err := render.Render([]events.RoutingState{s}, opts)
	if err != nil {
		return "", err
	}
	files := render.VersionFiles(1)
	for name, b := range cfg.Files {
		files[name] = b
	}
	edits := slices.Clone(v.edits)
	if v.log == logOff {
		edits = append(edits, accessLogOff)
	}
	for _, e := range edits {
		if files[e.file], err = replace(files[e.file], e); err != nil {
			return "", fmt.Errorf("%s: %w", e.file, err)
		}
	}
	dir := filepath.Join(prefix, "conf")
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
	}
	if err := makePrefix(prefix); err != nil {
		return "", err
	}
	return filepath.Join(dir, render.MainFile), nil
}

// replace applies e to b, and fails when the matches are not as many as
// e expects.
func replace(b []byte, e edit) ([]byte, error) {
	re := regexp.MustCompile(e.pattern)
	want := max(e.n, 1)
	if n := len(re.FindAll(b, -1)); n != want {
		return nil, fmt.Errorf("%d matches of %s, want %d", n, e.pattern, want)
	}
	return re.ReplaceAll(b, []byte(e.repl)), nil
}

// handConfig fills in handwritten.conf for the variant.
func handConfig(prefix string, v *variant, backends []string, workers int, syslog string) (string, error) {
	data := map[string]any{
		"Prefix":   prefix,
		"Workers":  workers,
		"Backends": backends,
		"Listen":   fmt.Sprintf("127.0.0.1:%d", v.port),
		"Syslog":   "",
	}
	if v.log == logSyslog {
		data["Syslog"] = syslog
		data["LogLayout"] = jsonLayout()
	}
	return writeTemplate(prefix, handwrittenConf, data)
}

// jsonLayout is the rendered JSON log line's layout (render.AccessLogFields
// in order), with the app name a literal.
func jsonLayout() string {
	var b strings.Builder
	b.WriteString(`{"v":1,"node":"local"`)
	for _, f := range render.AccessLogFields {
		val := f[1]
		switch f[0] {
		case "app":
			val = appName
		case "config_version":
			val = "1" // one fixed config: no per-version map
		}
		b.WriteString(`,"` + f[0] + `":"` + val + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// writeTemplate writes the config template filled with data to
// prefix/conf/nginx.conf and returns its path.
func writeTemplate(prefix, tmpl string, data any) (string, error) {
	t, err := template.New("conf").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	if err := makePrefix(prefix); err != nil {
		return "", err
	}
	conf := filepath.Join(prefix, "conf", "nginx.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return "", err
	}
	return conf, os.WriteFile(conf, b.Bytes(), 0o644)
}

// makePrefix creates the directories NGINX does not create itself.
func makePrefix(prefix string) error {
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}
