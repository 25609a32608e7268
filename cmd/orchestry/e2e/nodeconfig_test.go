package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/feed"
)

// GET /v1/nodes/<node>/config asks the real renderer over NATS (each
// service under its own NATS user) and shows the live files NGINX runs;
// GET /v1/apps/<app>/rollout turns live on the node once it serves a
// change; the event feed shows the change and the node's report.
func TestNodeConfigRolloutAndEvents(t *testing.T) {
	s := newStack(t)
	s.serveWeb(1)
	b0 := s.backends[0]

	code, conf := s.do(http.MethodGet, "/v1/nodes/e2e/config", "", "")
	if code != http.StatusOK {
		t.Fatalf("node config: %d %s", code, conf)
	}
	for _, want := range []string{"# file: apps/web.conf\n", "# file: nginx.conf\n", "upstream app_web",
		fmt.Sprintf("127.0.0.1:%d", b0.Addr.Port)} {
		if !strings.Contains(conf, want) {
			t.Errorf("node config lacks %q:\n%s", want, conf)
		}
	}
	if live := s.readFile("live/apps/web.conf"); !strings.Contains(conf, live) {
		t.Errorf("node config is not the live apps/web.conf:\n%s", live)
	}
	for _, never := range []string{"# file: .hash", "PRIVATE KEY", "# file: certs/"} {
		if strings.Contains(conf, never) {
			t.Errorf("node config holds %q", never)
		}
	}
	if code, body := s.do(http.MethodGet, "/v1/nodes/no-such-node/config", "", ""); code != http.StatusNotFound || !strings.Contains(body, "no-such-node") {
		t.Errorf("unknown node: %d %s", code, body)
	}

	// A change: it comes down the event stream, and its revision turns
	// live on the node.
	stream := s.openEvents("?app=web&subject=routing.changed")
	s.addInstance("web", 1)
	for {
		r := stream.next()
		if r.App != "web" || r.Type != "io.orchestry.routing.changed.v1" {
			t.Fatalf("stream sent %+v", r)
		}
		if strings.Contains(r.Summary, ": 2 instances") {
			break
		}
	}
	var app api.AppView
	if err := json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/web", "", "")), &app); err != nil {
		t.Fatal(err)
	}
	var ro api.RolloutView
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/web/rollout", "", "")), &ro); err != nil {
			t.Fatal(err)
		}
		if len(ro.Nodes) == 1 && ro.Nodes[0].Live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not live within 30s: %+v", ro)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := ro.Nodes[0]; ro.Revision != app.Revision || n.Node != "e2e" || n.ServedRevision < app.Revision || n.Version == 0 {
		t.Errorf("rollout %+v, app revision %d", ro, app.Revision)
	}
	if _, conf := s.do(http.MethodGet, "/v1/nodes/e2e/config", "", ""); !strings.Contains(conf, fmt.Sprintf("127.0.0.1:%d", s.backends[1].Addr.Port)) {
		t.Errorf("node config lacks the new instance:\n%s", conf)
	}

	// The feed saw the changes and the node's reports.
	var evs api.EventsView
	if err := json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/events?app=web&subject=routing.changed", "", "")), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs.Events) == 0 || evs.Events[len(evs.Events)-1].Summary != fmt.Sprintf("app web changed to revision %d: 2 instances, round_robin", app.Revision) {
		t.Errorf("routing events %+v", evs.Events)
	}
	if err := json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/events?subject=config.rendered.e2e&limit=1", "", "")), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs.Events) != 1 || evs.Events[0].Node != "e2e" || !strings.HasPrefix(evs.Events[0].Summary, "node e2e ") {
		t.Errorf("render events %+v", evs.Events)
	}
}

// eventStream reads EventRecords from GET /v1/events/stream.
type eventStream struct {
	t     testing.TB
	lines *bufio.Scanner
}

// openEvents opens the event stream with query, closed when the test ends.
func (s *stack) openEvents(query string) *eventStream {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.api+"/v1/events/stream"+query, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		s.t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &eventStream{t: s.t, lines: sc}
}

// next returns the next record (within 30s, or the test fails).
func (e *eventStream) next() feed.EventRecord {
	e.t.Helper()
	got := make(chan feed.EventRecord, 1)
	go func() {
		for e.lines.Scan() {
			if data, ok := strings.CutPrefix(e.lines.Text(), "data: "); ok {
				var r feed.EventRecord
				if json.Unmarshal([]byte(data), &r) == nil {
					got <- r
					return
				}
			}
		}
		close(got)
	}()
	select {
	case r, ok := <-got:
		if !ok {
			e.t.Fatal("event stream ended")
		}
		return r
	case <-time.After(30 * time.Second):
		e.t.Fatal("no event within 30s")
	}
	return feed.EventRecord{}
}
