package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/services/routing/api"
)

func TestAPIErrorRendering(t *testing.T) {
	c := &Client{conn: Connection{URL: "http://x", Token: "t", TokenSource: "ORCHESTRY_API_TOKEN"}}
	tests := []struct {
		name     string
		status   int
		body     string
		want     string
		wantCode int
	}{
		{name: "422 lists each field", status: 422,
			body: `{"error":"invalid fields: spec.lb_method, metadata.name","code":"VALIDATION_ERROR","details":[{"field":"spec.lb_method","reason":"must be one of round_robin, least_conn"},{"field":"metadata.name","reason":"must equal the name in the URL (\"a\")"}]}`,
			want: "the API refused the request, invalid fields (422):\n  spec.lb_method: must be one of round_robin, least_conn\n  metadata.name: must equal the name in the URL (\"a\")", wantCode: ExitFailed},
		{name: "401 names the token's source", status: 401, body: `{"error":"missing or invalid bearer token","code":"UNAUTHORIZED"}`,
			want: "the API refused the token (from ORCHESTRY_API_TOKEN): missing or invalid bearer token; pass the right one with --token or ORCHESTRY_API_TOKEN", wantCode: ExitUnreachable},
		{name: "404", status: 404, body: `{"error":"shop: app not found","code":"NOT_FOUND"}`,
			want: "shop: app not found (404 Not Found)", wantCode: ExitNotFound},
		{name: "409 with details", status: 409, body: `{"error":"address taken","code":"CONFLICT","details":[{"field":"spec.networking.domain","reason":"already used"}]}`,
			want: "address taken (409 Conflict)\n  spec.networking.domain: already used", wantCode: ExitFailed},
		{name: "not Orchestry's body", status: 502, body: "bad gateway\n",
			want: "bad gateway (502 Bad Gateway)", wantCode: ExitFailed},
		{name: "empty body", status: 500, body: "",
			want: "GET /v1/apps (500 Internal Server Error)", wantCode: ExitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("list apps: %w", c.apiError("GET", "/v1/apps", tt.status, []byte(tt.body)))
			if got := err.Error(); got != "list apps: "+tt.want {
				t.Errorf("got\n%s\nwant\nlist apps: %s", got, tt.want)
			}
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("exit code %d, want %d", got, tt.wantCode)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitFailed},
		{usageErrorf("bad"), ExitUsage},
		{fmt.Errorf("wrapped: %w", &ConnError{URL: "u", Err: errors.New("refused")}), ExitUnreachable},
		{&APIError{Status: 403}, ExitUnreachable},
		{&APIError{Status: 404, Message: "no such endpoint: GET /v1/x"}, ExitNotFound},
		{&ExitError{Code: ExitTimeout, Err: errors.New("timed out")}, ExitTimeout},
		{notFound("node", "n"), ExitNotFound},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestExecuteExitCodes(t *testing.T) {
	api := "http://" + closedPort(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "help", args: []string{"--help"}, code: ExitOK, stdout: "Exit codes:"},
		{name: "unknown command", args: []string{"frobnicate"}, code: ExitUsage, stderr: `unknown command "frobnicate"`},
		{name: "unknown flag", args: []string{"get", "apps", "--frob"}, code: ExitUsage, stderr: "unknown flag: --frob"},
		{name: "unknown resource", args: []string{"get", "pods"}, code: ExitUsage, stderr: `unknown resource "pods"`},
		{name: "bad output format", args: []string{"get", "apps", "-o", "xml"}, code: ExitUsage, stderr: `unknown output format "xml"`},
		{name: "instances need the app", args: []string{"get", "instances"}, code: ExitUsage, stderr: "needs the app"},
		{name: "apply needs a file", args: []string{"apply"}, code: ExitUsage, stderr: "apply needs -f FILE"},
		{name: "missing app file", args: []string{"apply", "-f", "/nonexistent/app.yaml"}, code: ExitUsage, stderr: "no such file"},
		{name: "bad address", args: []string{"instances", "add", "shop", "--id", "a", "--address", "10.0.0.1"}, code: ExitUsage, stderr: "is not HOST:PORT"},
		{name: "describe wants app", args: []string{"describe", "node", "x"}, code: ExitUsage, stderr: "describe supports apps only"},
		{name: "unreachable", args: []string{"get", "apps", "--api", api}, code: ExitUnreachable, stderr: "cannot reach the Orchestry API at " + api},
		{name: "version", args: []string{"version"}, code: ExitOK, stdout: "orchestry "},
		{name: "completion", args: []string{"completion", "bash"}, code: ExitOK, stdout: "bash completion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute(context.Background(), tt.args, Options{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""),
				Getenv: func(string) string { return "" }, UserConfigDir: func() (string, error) { return t.TempDir(), nil }})
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderr)
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tt.stdout)
			}
		})
	}
}

func TestPassthroughKeepsFlags(t *testing.T) {
	var got []string
	cmd := Passthrough("up [-demo]", "up", "up", func(args []string) int { got = args; return 7 })
	var errOut bytes.Buffer
	code := Execute(context.Background(), []string{"up", "-demo", "--x", "-h"}, Options{Stdout: &bytes.Buffer{}, Stderr: &errOut, Commands: []*cobra.Command{cmd}})
	if code != 7 || strings.Join(got, " ") != "-demo --x -h" {
		t.Errorf("code %d args %q", code, got)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestSplitAddress(t *testing.T) {
	for _, tt := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{{"10.0.0.1:8080", "10.0.0.1", 8080, true}, {"[::1]:80", "::1", 80, true}, {"web:1", "web", 1, true},
		{"10.0.0.1", "", 0, false}, {":80", "", 0, false}, {"a:0", "", 0, false}, {"a:x", "", 0, false}, {"", "", 0, false}} {
		h, p, err := SplitAddress(tt.in)
		if (err == nil) != tt.ok || h != tt.host || p != tt.port {
			t.Errorf("SplitAddress(%q) = %q %d %v", tt.in, h, p, err)
		}
	}
}

func TestProgress(t *testing.T) {
	r := api.RolloutView{App: "shop", Revision: 9, Nodes: []api.RolloutNode{
		{Node: "b", ServedRevision: 8, Outcome: "invalid", Error: "nginx -t failed"},
		{Node: "a", ServedRevision: 9, Live: true},
		{Node: "c", ServedRevision: 10},
	}}
	p := Progress(r, 9)
	if p.Done() || strings.Join(p.Live, ",") != "a,c" || len(p.Lagging) != 1 {
		t.Fatalf("progress %+v", p)
	}
	if got := describeLagging(p.Lagging); got != "b (serves revision 8, last render invalid: nginx -t failed)" {
		t.Errorf("lagging %q", got)
	}
	if !Progress(r, 8).Done() {
		t.Error("revision 8 is served everywhere")
	}
}
