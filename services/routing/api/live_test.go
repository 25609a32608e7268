package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/nodeconfig"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
)

// fakeNodes answers node configs from a map; a missing node is ErrNoNode.
type fakeNodes map[string]events.NodeConfig

func (f fakeNodes) Fetch(_ context.Context, node string) (events.NodeConfig, error) {
	cfg, ok := f[node]
	if !ok {
		return events.NodeConfig{}, fmt.Errorf("node %s: %w", node, nodeconfig.ErrNoNode)
	}
	if cfg.Error != "" {
		return cfg, fmt.Errorf("node %s: renderer: %s", node, cfg.Error)
	}
	return cfg, nil
}

type liveEnv struct {
	*env
	feed    *feed.Feed
	tracker *status.Tracker
}

// setupLive is setup with an event feed, a status tracker and fake nodes
// behind a server with a short read timeout (which a stream outlives).
func setupLive(t *testing.T, nodes fakeNodes) *liveEnv {
	t.Helper()
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	st, err := store.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	f := feed.New(feed.Options{Size: 50, Buffer: 4})
	tr := &status.Tracker{}
	h := api.New(st, tr, api.Options{Token: token, Events: f, NodeConfig: nodes, KeepAlive: 200 * time.Millisecond},
		zerolog.New(zerolog.NewTestWriter(t)))
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ReadTimeout = time.Second
	ts.Start()
	t.Cleanup(ts.Close)
	return &liveEnv{env: &env{t: t, url: ts.URL, kv: st.KV()}, feed: f, tracker: tr}
}

func (e *liveEnv) add(subject, app string) feed.EventRecord {
	return e.feed.Add(feed.EventRecord{Subject: subject, App: app, Type: "io.orchestry.test.v1", ID: "x", Time: time.Now().UTC(),
		Summary: "s", Data: json.RawMessage(`{"a":1}`)})
}

func TestListEvents(t *testing.T) {
	e := setupLive(t, nil)
	for i := range 120 {
		app := "web"
		if i%2 == 1 {
			app = "api"
		}
		e.add("instance.health."+app, app)
	}
	// The ring keeps 50: seq 71..120.
	for _, tc := range []struct {
		query      string
		n          int
		first      uint64
		code       int
		badField   string
		firstIsApp string
	}{
		{query: "", n: 50, first: 71, code: 200},
		{query: "?limit=5", n: 5, first: 116, code: 200},
		{query: "?app=api&limit=3", n: 3, first: 116, code: 200, firstIsApp: "api"},
		{query: "?subject=instance.health.web", n: 25, first: 71, code: 200, firstIsApp: "web"},
		{query: "?subject=instance.*.api", n: 25, first: 72, code: 200, firstIsApp: "api"},
		{query: "?subject=cert.", n: 0, code: 200},
		{query: "?limit=0", code: 422, badField: "limit"},
		{query: "?limit=1001", code: 422, badField: "limit"},
		{query: "?limit=x", code: 422, badField: "limit"},
		{query: "?app=Bad_Name", code: 422, badField: "app"},
		{query: "?subject=a%20b", code: 422, badField: "subject"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if tc.code != 200 {
				var eb api.ErrorBody
				if code := e.do("GET", "/v1/events"+tc.query, "", "", &eb); code != tc.code || eb.Code != api.CodeValidation ||
					len(eb.Details) != 1 || eb.Details[0].Field != tc.badField {
					t.Errorf("%d %+v", code, eb)
				}
				return
			}
			var got api.EventsView
			if code := e.do("GET", "/v1/events"+tc.query, "", "", &got); code != 200 || got.Events == nil {
				t.Fatalf("%d %+v", code, got)
			}
			if len(got.Events) != tc.n {
				t.Fatalf("%d events, want %d", len(got.Events), tc.n)
			}
			if tc.n == 0 {
				return
			}
			if got.Events[0].Seq != tc.first || (tc.firstIsApp != "" && got.Events[0].App != tc.firstIsApp) {
				t.Errorf("first %+v", got.Events[0])
			}
			for i := 1; i < len(got.Events); i++ {
				if got.Events[i].Seq <= got.Events[i-1].Seq {
					t.Fatalf("not oldest first: %d after %d", got.Events[i].Seq, got.Events[i-1].Seq)
				}
			}
		})
	}
}

// sse is a client of the event stream.
type sse struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

type sseMessage struct {
	id, event, data, comment string
}

func openStream(t *testing.T, e *liveEnv, query, lastID string) *sse {
	t.Helper()
	req, err := http.NewRequest("GET", e.url+"/v1/events/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return &sse{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads one message or comment block (skipping the retry hint).
func (s *sse) next() (sseMessage, error) {
	var m sseMessage
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m != (sseMessage{}) {
				return m, nil
			}
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.data = line[6:]
		}
	}
}

// records reads n event messages, skipping comments.
func (s *sse) records(n int) []feed.EventRecord {
	s.t.Helper()
	var out []feed.EventRecord
	for len(out) < n {
		m, err := s.next()
		if err != nil {
			s.t.Fatalf("after %d records: %v", len(out), err)
		}
		if m.comment != "" {
			continue
		}
		var r feed.EventRecord
		if err := json.Unmarshal([]byte(m.data), &r); err != nil {
			s.t.Fatalf("data %q: %v", m.data, err)
		}
		if m.id != fmt.Sprint(r.Seq) || m.event != r.Type {
			s.t.Errorf("id %q event %q for %+v", m.id, m.event, r)
		}
		out = append(out, r)
	}
	return out
}

func TestStreamEvents(t *testing.T) {
	e := setupLive(t, nil)
	for range 3 {
		e.add("routing.changed.web", "web")
	}
	e.add("routing.changed.api", "api")

	t.Run("recent, then live, filtered", func(t *testing.T) {
		s := openStream(t, e, "?app=web", "")
		if got := s.records(3); got[0].Seq != 1 || got[2].Seq != 3 {
			t.Fatalf("backlog %+v", got)
		}
		e.add("routing.changed.api", "api")
		e.add("routing.changed.web", "web")
		if got := s.records(1); got[0].Seq != 6 || got[0].App != "web" {
			t.Fatalf("live %+v", got)
		}
	})
	t.Run("Last-Event-ID", func(t *testing.T) {
		s := openStream(t, e, "", "5")
		if got := s.records(1); got[0].Seq != 6 {
			t.Fatalf("after 5: %+v", got)
		}
		// An id above the newest (routing restarted) sends everything.
		s = openStream(t, e, "?app=api", "9999")
		if got := s.records(2); got[0].Seq != 4 || got[1].Seq != 5 {
			t.Fatalf("after a restart: %+v", got)
		}
	})
	t.Run("keepalive, and the read timeout does not end it", func(t *testing.T) {
		s := openStream(t, e, "?subject=cert.", "")
		start := time.Now()
		keepalives := 0
		for time.Since(start) < 1500*time.Millisecond {
			m, err := s.next()
			if err != nil {
				t.Fatalf("stream ended after %s: %v", time.Since(start), err)
			}
			if m.comment == "keepalive" {
				keepalives++
			}
		}
		if keepalives < 3 {
			t.Errorf("%d keepalives in 1.5s at 200ms", keepalives)
		}
	})
	t.Run("a slow client is dropped, the feed goes on", func(t *testing.T) {
		s := openStream(t, e, "?subject=rejected.", "")
		m, err := s.next() // the first keepalive: the subscription is live
		if err != nil || m.comment != "keepalive" {
			t.Fatalf("%+v %v", m, err)
		}
		// Never read while far more than the buffer (4) arrives, in
		// records big enough to fill the socket buffers.
		big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
		start := time.Now()
		for range 200 {
			e.feed.Add(feed.EventRecord{Subject: "rejected.x", Type: "t", Summary: "s", Data: big})
		}
		if time.Since(start) > time.Second {
			t.Errorf("adding took %s: the feed waited for a client", time.Since(start))
		}
		var last sseMessage
		for {
			m, err := s.next()
			if err != nil {
				break
			}
			last = m
		}
		if !strings.HasPrefix(last.comment, "dropped") {
			t.Errorf("stream ended with %+v, not the dropped comment", last.comment)
		}
		for end := time.Now().Add(2 * time.Second); e.feed.Subscribers() != 0 && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		}
		if n := e.feed.Subscribers(); n != 0 {
			t.Errorf("%d subscribers left", n)
		}
	})
	t.Run("every stream ends when the feed closes (shutdown)", func(t *testing.T) {
		s := openStream(t, e, "?subject=cert.", "")
		if m, err := s.next(); err != nil || m.comment != "keepalive" {
			t.Fatalf("%+v %v", m, err)
		}
		e.feed.Close()
		done := make(chan error, 1)
		go func() {
			for {
				if _, err := s.next(); err != nil {
					done <- err
					return
				}
			}
		}()
		select {
		case err := <-done:
			if err != io.EOF {
				t.Errorf("stream ended with %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("stream still open after Close")
		}
	})
}

func TestRollout(t *testing.T) {
	e := setupLive(t, nil)
	var put api.PutResult
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 0), &put); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	now := time.Now()
	report := func(node string, rev uint64, served ...events.ServedChange) {
		e.tracker.Observe(events.RenderReport{Node: node, Version: rev, Outcome: events.OutcomeApplied, Revision: rev, Served: served}, now)
	}
	report("n1", 1, events.ServedChange{App: "shop", Revision: put.Revision})
	report("n2", 1, events.ServedChange{App: "shop", Revision: put.Revision - 1}, events.ServedChange{App: "other", Revision: 99})
	report("n3", 1)
	var got api.RolloutView
	if code := e.do("GET", "/v1/apps/shop/rollout", "", "", &got); code != 200 {
		t.Fatalf("%d", code)
	}
	want := []api.RolloutNode{
		{Node: "n1", ServedRevision: put.Revision, Live: true, Version: 1, Outcome: events.OutcomeApplied},
		{Node: "n2", ServedRevision: put.Revision - 1, Live: false, Version: 1, Outcome: events.OutcomeApplied},
		{Node: "n3", ServedRevision: 0, Live: false, Version: 1, Outcome: events.OutcomeApplied},
	}
	if got.App != "shop" || got.Revision != put.Revision || fmt.Sprint(got.Nodes) != fmt.Sprint(want) {
		t.Errorf("rollout %+v\nwant nodes %+v", got, want)
	}
	// The status shows the same per node.
	var st struct {
		Nodes []status.Node `json:"nodes"`
	}
	if code := e.do("GET", "/v1/status", "", "", &st); code != 200 || len(st.Nodes) != 3 ||
		st.Nodes[1].ServedRevisions["other"] != 99 || st.Nodes[2].ServedRevisions == nil {
		t.Errorf("status %d %+v", code, st)
	}
	var eb api.ErrorBody
	if code := e.do("GET", "/v1/apps/nope/rollout", "", "", &eb); code != 404 || eb.Code != api.CodeNotFound {
		t.Errorf("unknown app: %d %+v", code, eb)
	}
}

func TestNodeConfig(t *testing.T) {
	e := setupLive(t, fakeNodes{
		"n1": {Node: "n1", Version: 4, Hash: "abc", Files: []events.ConfigFile{
			{Path: "apps/web.conf", Content: "upstream orchestry_web {}\n"}, {Path: "nginx.conf", Content: "events {}"}}},
		"fresh":  {Node: "fresh", Files: []events.ConfigFile{}},
		"broken": {Node: "broken", Error: "read live config: gone"},
	})
	for _, tc := range []struct {
		node, want string
		code       int
		errCode    string
		mentions   string
	}{
		{node: "n1", code: 200, want: "# file: apps/web.conf\nupstream orchestry_web {}\n# file: nginx.conf\nevents {}\n"},
		{node: "gone", code: 404, errCode: api.CodeNotFound, mentions: "gone"},
		{node: "fresh", code: 404, errCode: api.CodeNotFound, mentions: "fresh"},
		{node: "broken", code: 500, errCode: api.CodeInternal, mentions: "broken"},
		{node: "Bad_Node", code: 422, errCode: api.CodeValidation, mentions: "node"},
	} {
		t.Run(tc.node, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url+"/v1/nodes/"+tc.node+"/config", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if tc.code == 200 {
				if string(b) != tc.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
					resp.Header.Get("X-Orchestry-Config-Version") != "4" {
					t.Errorf("%s %q", resp.Header, b)
				}
				return
			}
			var eb api.ErrorBody
			if err := json.Unmarshal(b, &eb); err != nil || eb.Code != tc.errCode || !strings.Contains(eb.Error+fmt.Sprint(eb.Details), tc.mentions) {
				t.Errorf("%s (%v)", b, err)
			}
		})
	}
	// Without a token, nothing.
	if code := e.doToken("", "GET", "/v1/nodes/n1/config", "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
}
