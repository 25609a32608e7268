package render

import (
	"bytes"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestHash(t *testing.T) {
	states := func(port int) []events.RoutingState {
		return []events.RoutingState{
			state("b", events.AppSpec{Networking: events.Networking{Headers: map[string]string{"X-B": "2", "X-A": "1", "X-C": "3"}}},
				inst("2", "10.0.0.2", port), inst("1", "10.0.0.1", 80)),
			state("a", events.AppSpec{LBMethod: events.LBLeastConn, Networking: events.Networking{ExternalPort: 8080}}, inst("1", "10.0.1.1", 80)),
		}
	}
	c1, err := Render(states(80), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Render(states(80), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if c1.Hash != c2.Hash || len(c1.Hash) != 64 {
		t.Fatalf("hash not stable: %s vs %s", c1.Hash, c2.Hash)
	}
	// Input order does not matter.
	rev := states(80)
	rev[0], rev[1] = rev[1], rev[0]
	rev[1].Instances[0], rev[1].Instances[1] = rev[1].Instances[1], rev[1].Instances[0]
	c3, err := Render(rev, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if c3.Hash != c1.Hash {
		t.Error("hash depends on input order")
	}
	for name, b := range c1.Files {
		if !bytes.Equal(b, c3.Files[name]) {
			t.Errorf("%s depends on input order", name)
		}
	}
	c4, err := Render(states(81), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if c4.Hash == c1.Hash || c4.RoutingHash == c1.RoutingHash {
		t.Error("hash or routing hash unchanged after an instance change")
	}
	// Another node (its own name in the access log, its own status
	// server) serving the same state: another config, the same routing.
	other := testOpts()
	other.Node = "another-node"
	c5, err := Render(states(80), other)
	if err != nil {
		t.Fatal(err)
	}
	if c5.Hash == c1.Hash {
		t.Error("hash ignores the node's own settings")
	}
	if c5.RoutingHash != c1.RoutingHash || len(c1.RoutingHash) != 64 {
		t.Errorf("routing hash differs between nodes serving the same state: %s vs %s", c5.RoutingHash, c1.RoutingHash)
	}
	if _, ok := c1.Files[VersionName]; ok {
		t.Error("Files holds version.conf")
	}
	if bytes.Equal(VersionFile(1), VersionFile(2)) {
		t.Error("VersionFile ignores the version")
	}
	if got, want := string(VersionFile(42)), "return 200 \"42\\n\";\n"; got != want {
		t.Errorf("VersionFile(42) = %q, want %q", got, want)
	}
}
