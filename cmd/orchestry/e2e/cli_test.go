package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestry/orchestry/cmd/orchestry/cli"
)

// cliBuffer is a bytes.Buffer safe to read while a command writes it.
type cliBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cliBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *cliBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliRun runs the orchestry command line against the stack's API with
// the test token (unless args set --token again), with nothing from the
// environment or a config file.
func cliRun(ctx context.Context, t *testing.T, s *stack, stdout, stderr *cliBuffer, args ...string) int {
	t.Helper()
	all := append([]string{"--api", s.api, "--token", testToken}, args...)
	cfgDir := t.TempDir()
	return cli.Execute(ctx, all, cli.Options{
		Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr,
		Getenv:        func(string) string { return "" },
		UserConfigDir: func() (string, error) { return cfgDir, nil },
	})
}

// cliWant runs the command line and fails the test unless it exits with
// want; it returns standard output and standard error.
func cliWant(t *testing.T, s *stack, want int, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut cliBuffer
	if code := cliRun(ctx, t, s, &out, &errOut, args...); code != want {
		t.Fatalf("orchestry %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// cliAppFile writes an app file and returns its path.
func cliAppFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIAgainstTheStack(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	doc := func(lb string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: App\nmetadata:\n  name: cli-shop\nspec:\n  lb_method: %s\n  networking:\n    external_port: %d\n", lb, port)
	}

	t.Run("apply creates, then finds nothing to change, then shows the diff", func(t *testing.T) {
		f := cliAppFile(t, "app.yaml", doc("round_robin"))
		out, _ := cliWant(t, s, cli.ExitOK, "apply", "-f", f)
		if !strings.HasPrefix(out, "app/cli-shop created (revision ") {
			t.Fatalf("first apply: %q", out)
		}
		out2, _ := cliWant(t, s, cli.ExitOK, "apply", "-f", f)
		if !strings.HasPrefix(out2, "app/cli-shop unchanged (revision ") || strings.Contains(out2, "~") {
			t.Fatalf("second apply: %q", out2)
		}
		if rev1, rev2 := strings.Fields(out)[3], strings.Fields(out2)[3]; rev1 != rev2 {
			t.Errorf("an unchanged apply wrote a new revision: %s then %s", rev1, rev2)
		}
		out3, _ := cliWant(t, s, cli.ExitOK, "apply", "-f", cliAppFile(t, "app.yaml", doc("least_conn")))
		if !strings.HasPrefix(out3, "app/cli-shop configured (revision ") || !strings.Contains(out3, "\n  ~ spec.lb_method: round_robin -> least_conn\n") {
			t.Fatalf("third apply: %q", out3)
		}
	})

	t.Run("get apps -o json is the API's list", func(t *testing.T) {
		out, _ := cliWant(t, s, cli.ExitOK, "get", "apps", "-o", "json")
		var list struct {
			Apps []struct {
				App struct {
					Metadata struct{ Name string } `json:"metadata"`
					Spec     struct {
						LBMethod string `json:"lb_method"`
					} `json:"spec"`
				} `json:"app"`
			} `json:"apps"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("get apps -o json: %v\n%s", err, out)
		}
		if len(list.Apps) != 1 || list.Apps[0].App.Metadata.Name != "cli-shop" || list.Apps[0].App.Spec.LBMethod != "least_conn" {
			t.Errorf("apps %+v", list.Apps)
		}
		table, _ := cliWant(t, s, cli.ExitOK, "get", "apps")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], "cli-shop ") ||
			strings.Index(lines[0], "LB") != strings.Index(lines[1], "least_conn") {
			t.Errorf("table not aligned:\n%s", table)
		}
		y, _ := cliWant(t, s, cli.ExitOK, "get", "app", "cli-shop", "-o", "yaml")
		if !strings.HasPrefix(y, "app:\n  metadata:\n    name: cli-shop\n") {
			t.Errorf("get app -o yaml:\n%s", y)
		}
	})

	t.Run("422 lists each field, exit code 1", func(t *testing.T) {
		bad := "apiVersion: v1\nkind: App\nmetadata:\n  name: cli-shop\nspec:\n  lb_method: fastest\n  max_conns: -1\n"
		_, errOut := cliWant(t, s, cli.ExitFailed, "apply", "-f", cliAppFile(t, "bad.yaml", bad))
		if !strings.Contains(errOut, "invalid fields (422):\n  spec.") || !strings.Contains(errOut, "\n  spec.lb_method: must be one of") ||
			!strings.Contains(errOut, "\n  spec.max_conns: ") {
			t.Errorf("stderr:\n%s", errOut)
		}
	})

	t.Run("wrong token exits 3", func(t *testing.T) {
		_, errOut := cliWant(t, s, cli.ExitUnreachable, "get", "apps", "--token", "not-the-token")
		if !strings.Contains(errOut, "the API refused the token (from --token)") {
			t.Errorf("stderr:\n%s", errOut)
		}
	})

	t.Run("apply --wait ends when the node serves the revision", func(t *testing.T) {
		out, errOut := cliWant(t, s, cli.ExitOK, "apply", "--wait", "--timeout", "30s", "-f", cliAppFile(t, "app.yaml", doc("round_robin")))
		if !strings.Contains(out, "configured") || !strings.Contains(errOut, "is live on every node (1)") || !strings.Contains(errOut, "live: e2e") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	})

	t.Run("events tail prints a registration made meanwhile", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out, errOut cliBuffer
		done := make(chan int, 1)
		go func() { done <- cliRun(ctx, t, s, &out, &errOut, "events", "tail", "instance.registered.cli-shop") }()
		// The stream replays the feed first: the registration must come
		// after the stream is open to prove it is live. An orchestrator
		// registers an instance with an event.
		time.Sleep(300 * time.Millisecond)
		s.publishRaw("instance.registered.cli-shop", "io.orchestry.instance.registered.v1",
			fmt.Sprintf(`{"instance":{"id":"tail-1","ip":"127.0.0.1","port":%d}}`, s.backends[0].Addr.Port))
		for !strings.Contains(out.String(), "instance tail-1 of cli-shop registered") {
			select {
			case <-ctx.Done():
				t.Fatalf("no registration line within 20s\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			case code := <-done:
				t.Fatalf("tail ended early with %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		cancel() // as Ctrl-C does
		if code := <-done; code != cli.ExitOK {
			t.Errorf("tail ended with %d after the interrupt; stderr:\n%s", code, errOut.String())
		}
		line := strings.TrimSpace(out.String())
		if !strings.Contains(line, "  instance.registered.cli-shop ") {
			t.Errorf("line %q lacks the subject", line)
		}
	})

	t.Run("instances, describe, status and deletion", func(t *testing.T) {
		add, _ := cliWant(t, s, cli.ExitOK, "instances", "add", "cli-shop", "--id", "web-2", "--address", fmt.Sprintf("127.0.0.1:%d", s.backends[1].Addr.Port), "--weight", "2")
		if !strings.HasPrefix(add, "instance cli-shop/web-2 registered at 127.0.0.1:") {
			t.Errorf("instances add: %q", add)
		}
		// routing applies the event registration on its own time.
		deadline := time.Now().Add(10 * time.Second)
		out, _ := cliWant(t, s, cli.ExitOK, "get", "instances", "cli-shop", "-o", "wide")
		for !strings.Contains(out, "tail-1 ") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			out, _ = cliWant(t, s, cli.ExitOK, "get", "instances", "cli-shop", "-o", "wide")
		}
		if !strings.Contains(out, "tail-1 ") || !strings.Contains(out, "web-2 ") || !strings.Contains(out, "LAST ERROR") {
			t.Errorf("get instances:\n%s", out)
		}
		desc, _ := cliWant(t, s, cli.ExitOK, "describe", "app", "cli-shop")
		for _, want := range []string{"Name:        cli-shop", "Instances (2):", "tail-1", "web-2", "NGINX nodes:", "e2e ", "Events:", "instance.registered.cli-shop", "routing.changed.cli-shop"} {
			if !strings.Contains(desc, want) {
				t.Errorf("describe lacks %q:\n%s", want, desc)
			}
		}
		st, _ := cliWant(t, s, cli.ExitOK, "status")
		if !strings.Contains(st, "Apps:   1") || !strings.Contains(st, "e2e ") {
			t.Errorf("status:\n%s", st)
		}
		nodes, _ := cliWant(t, s, cli.ExitOK, "get", "nodes", "-o", "json")
		if !strings.Contains(nodes, `"served_revisions"`) {
			t.Errorf("get nodes -o json:\n%s", nodes)
		}
		cfg, _ := cliWant(t, s, cli.ExitOK, "config", "show", "--node", "e2e")
		if !strings.Contains(cfg, "# file: ") || !strings.Contains(cfg, "cli-shop") {
			t.Errorf("config show:\n%s", cliShort(cfg))
		}
		cliWant(t, s, cli.ExitOK, "instances", "remove", "cli-shop", "tail-1")
		_, errOut := cliWant(t, s, cli.ExitNotFound, "instances", "remove", "cli-shop", "tail-1")
		if !strings.Contains(errOut, "tail-1") {
			t.Errorf("stderr:\n%s", errOut)
		}
		cliWant(t, s, cli.ExitOK, "delete", "app", "cli-shop")
		cliWant(t, s, cli.ExitNotFound, "get", "app", "cli-shop")
	})

	t.Run("apply --wait times out naming the lagging node, exit code 4", func(t *testing.T) {
		s.stopRenderer()
		late := fmt.Sprintf("apiVersion: v1\nkind: App\nmetadata:\n  name: cli-late\nspec:\n  networking:\n    external_port: %d\n", freePort(t))
		out, errOut := cliWant(t, s, cli.ExitTimeout, "apply", "--wait", "--timeout", "1500ms", "-f", cliAppFile(t, "late.yaml", late))
		if !strings.HasPrefix(out, "app/cli-late created") || !strings.Contains(errOut, "timed out after 1.5s waiting for app cli-late revision ") ||
			!strings.Contains(errOut, "not served by e2e (serves revision 0") {
			t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	})
}

// cliShort cuts long command output for a failure message.
func cliShort(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}
