package natsconf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/orchestry/orchestry/pkg/events"
)

// The generated file is what nats-server reads: every identity is a user
// whose password checks against its hash and whose permissions are exactly
// events.PermissionsOf, and the cluster has every route.
func TestRenderParsesToPermissionsOf(t *testing.T) {
	pw := map[string]string{}
	for _, n := range events.Services() {
		pw[n] = "pw-" + n + "-$x>"
	}
	routes := []string{"nats://nats-1:6222", "nats://nats-2:6222", "nats://nats-3:6222"}
	text, err := Render(Options{Listen: "0.0.0.0:4222", HTTP: "0.0.0.0:8222", StoreDir: "/data/jetstream",
		ClusterName: "orchestry", ClusterListen: "0.0.0.0:6222", Routes: routes, Passwords: pw, Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects the file: %v\n%s", err, text)
	}
	if !opts.JetStream || opts.StoreDir != "/data/jetstream" || opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Errorf("jetstream %v store %q port %d http %d", opts.JetStream, opts.StoreDir, opts.Port, opts.HTTPPort)
	}
	if opts.Cluster.Name != "orchestry" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Errorf("cluster %q port %d routes %v", opts.Cluster.Name, opts.Cluster.Port, opts.Routes)
	}
	if len(opts.Users) != len(events.Services()) {
		t.Fatalf("%d users, want %d", len(opts.Users), len(events.Services()))
	}
	for _, u := range opts.Users {
		want, err := events.PermissionsOf(u.Username)
		if err != nil {
			t.Fatal(err)
		}
		if bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(pw[u.Username])) != nil {
			t.Errorf("%s: password does not match its hash", u.Username)
		}
		p := u.Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Fatalf("%s: permissions missing", u.Username)
		}
		if !slices.Equal(p.Publish.Allow, want.Publish) || !slices.Equal(p.Publish.Deny, want.PublishDeny) || !slices.Equal(p.Subscribe.Allow, want.Subscribe) {
			t.Errorf("%s: permissions %+v %+v, want %+v", u.Username, p.Publish, p.Subscribe, want)
		}
		if (p.Response != nil) != want.AllowResponses {
			t.Errorf("%s: allow_responses %+v, want %v", u.Username, p.Response, want.AllowResponses)
		}
	}
}

func TestRenderNeedsEveryPassword(t *testing.T) {
	if _, err := Render(Options{Passwords: map[string]string{events.ServiceRouting: "x"}, Cost: bcrypt.MinCost}); err == nil {
		t.Fatal("no error with passwords missing")
	}
}
