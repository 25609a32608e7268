package render

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestRenderRefusesHostileInput(t *testing.T) {
	base := func() events.RoutingState {
		return state("web", events.AppSpec{Networking: events.Networking{Domain: "web.example.com"}}, inst("i1", "10.0.0.1", 8080))
	}
	cases := []struct {
		name  string
		field string
		mut   func(*events.RoutingState)
	}{
		{"header quote", "spec.networking.headers.X-A", func(s *events.RoutingState) {
			s.App.Spec.Networking.Headers = map[string]string{"X-A": `a" always; return 200 "x`}
		}},
		{"header semicolon", "spec.networking.headers.X-A", func(s *events.RoutingState) { s.App.Spec.Networking.Headers = map[string]string{"X-A": "a; deny all"} }},
		{"header brace", "spec.networking.headers.X-A", func(s *events.RoutingState) { s.App.Spec.Networking.Headers = map[string]string{"X-A": "a } server {"} }},
		{"header dollar", "spec.networking.headers.X-A", func(s *events.RoutingState) { s.App.Spec.Networking.Headers = map[string]string{"X-A": "$remote_addr"} }},
		{"header newline", "spec.networking.headers.X-A", func(s *events.RoutingState) {
			s.App.Spec.Networking.Headers = map[string]string{"X-A": "a\ninclude /etc/passwd;"}
		}},
		{"header backslash", "spec.networking.headers.X-A", func(s *events.RoutingState) { s.App.Spec.Networking.Headers = map[string]string{"X-A": `a\"b`} }},
		{"header name", "spec.networking.headers", func(s *events.RoutingState) { s.App.Spec.Networking.Headers = map[string]string{"X-A always; x": "v"} }},
		{"domain space", "spec.networking.domain", func(s *events.RoutingState) { s.App.Spec.Networking.Domain = "a.com b.com" }},
		{"domain semicolon", "spec.networking.domain", func(s *events.RoutingState) { s.App.Spec.Networking.Domain = "a.com;" }},
		{"domain comment", "spec.networking.domain", func(s *events.RoutingState) { s.App.Spec.Networking.Domain = "#a.com" }},
		{"domain traversal", "spec.networking.domain", func(s *events.RoutingState) { s.App.Spec.Networking.Domain = "../../etc/x" }},
		{"body size", "spec.networking.max_body_size", func(s *events.RoutingState) { s.App.Spec.Networking.MaxBodySize = "1m; deny all" }},
		{"hash key outside set", "spec.hash_key", func(s *events.RoutingState) { s.App.Spec.LBMethod, s.App.Spec.HashKey = events.LBHash, "$request_uri" }},
		{"hash key arbitrary", "spec.hash_key", func(s *events.RoutingState) { s.App.Spec.LBMethod, s.App.Spec.HashKey = events.LBHash, "args" }},
		{"hash cookie injection", "spec.hash_key", func(s *events.RoutingState) { s.App.Spec.LBMethod, s.App.Spec.HashKey = events.LBHash, "cookie:a;b" }},
		{"hash header injection", "spec.hash_key", func(s *events.RoutingState) { s.App.Spec.LBMethod, s.App.Spec.HashKey = events.LBHash, "header:X }" }},
		{"lb method", "spec.lb_method", func(s *events.RoutingState) { s.App.Spec.LBMethod = "least_time" }},
		{"ssl without domain", "spec.networking.ssl.enabled", func(s *events.RoutingState) {
			s.App.Spec.Networking.Domain = ""
			s.App.Spec.Networking.SSL.Enabled = true
		}},
		{"port", "spec.networking.external_port", func(s *events.RoutingState) { s.App.Spec.Networking.ExternalPort = 70000 }},
		{"app name", "metadata.name", func(s *events.RoutingState) { s.App.Metadata.Name = "web;x" }},
		{"instance ip", "instances[0].ip", func(s *events.RoutingState) { s.Instances[0].IP = "10.0.0.1:80 backup" }},
		{"instance ip zone", "instances[0].ip", func(s *events.RoutingState) { s.Instances[0].IP = "fe80::1%eth0" }},
		{"instance port", "instances[0].port", func(s *events.RoutingState) { s.Instances[0].Port = 0 }},
		{"instance weight", "instances[0].weight", func(s *events.RoutingState) { s.Instances[0].Weight = -1 }},
		{"instance id", "instances[0].id", func(s *events.RoutingState) { s.Instances[0].ID = "a b" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			c.mut(&s)
			_, err := Render([]events.RoutingState{s}, testOpts())
			if err == nil {
				t.Fatal("Render accepted hostile input")
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name field %q", err, c.field)
			}
			if !strings.HasPrefix(err.Error(), "render ") {
				t.Errorf("error %q does not start with the render context", err)
			}
		})
	}
}

func TestRenderRefusesConflicts(t *testing.T) {
	a := state("a", events.AppSpec{Networking: events.Networking{Domain: "a.example.com"}})
	if _, err := Render([]events.RoutingState{a, a}, testOpts()); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate app: %v", err)
	}
	b := state("b", events.AppSpec{Networking: events.Networking{ExternalPort: 80, Domain: "b.example.com", SSL: events.SSL{Enabled: true}}})
	if _, err := Render([]events.RoutingState{a, b}, testOpts()); err == nil || !strings.Contains(err.Error(), "ssl.enabled") {
		t.Errorf("mixed TLS on one port: %v", err)
	}
	tlsOn8080 := state("t", events.AppSpec{Networking: events.Networking{ExternalPort: 8080, Domain: "t.example.com", SSL: events.SSL{Enabled: true}}})
	redirect := state("r", events.AppSpec{Networking: events.Networking{ExternalPort: 8443, Domain: "r.example.com", SSL: events.SSL{Enabled: true, RedirectHTTP: true}}})
	if _, err := Render([]events.RoutingState{a, redirect}, testOpts()); err != nil {
		t.Errorf("a redirect on 80 beside a plain app on 80: %v", err)
	}
	if _, err := Render([]events.RoutingState{tlsOn8080, redirect}, testOpts()); err != nil {
		t.Errorf("unrelated ports: %v", err)
	}
	tlsOn80 := state("u", events.AppSpec{Networking: events.Networking{ExternalPort: 80, Domain: "u.example.com", SSL: events.SSL{Enabled: true}}})
	if _, err := Render([]events.RoutingState{tlsOn80, redirect}, testOpts()); err == nil || !strings.Contains(err.Error(), "port 80 is shared") {
		t.Errorf("a redirect on 80 where TLS is served: %v", err)
	}
	c := state("c", events.AppSpec{}, inst("x", "10.0.0.1", 1), inst("x", "10.0.0.2", 1))
	if _, err := Render([]events.RoutingState{c}, testOpts()); err == nil || !strings.Contains(err.Error(), "instances[1].id") {
		t.Errorf("duplicate instance: %v", err)
	}
	d := a
	d.Deleted = true
	if _, err := Render([]events.RoutingState{d}, testOpts()); err == nil {
		t.Error("deleted app accepted")
	}
}

func TestOptionsValidated(t *testing.T) {
	for name, mut := range map[string]func(*Options){
		"relative prefix":  func(o *Options) { o.Prefix = "nginx" },
		"relative certdir": func(o *Options) { o.CertDir = "certs" },
		"public status":    func(o *Options) { o.StatusListen = "203.0.113.5:8081" },
		"status no port":   func(o *Options) { o.StatusListen = "127.0.0.1" },
		"negative workers": func(o *Options) { o.WorkerProcesses = -1 },
		"prefix injection": func(o *Options) { o.Prefix = "/x;/y" },
		"node injection":   func(o *Options) { o.Node = `a","x":"y` },
		"node upper":       func(o *Options) { o.Node = "Edge" },
		"syslog no port":   func(o *Options) { o.Syslog = "127.0.0.1" },
		"syslog injection": func(o *Options) { o.Syslog = "metrics:5514,facility=x" },
		"syslog bad port":  func(o *Options) { o.Syslog = "metrics:99999" },
		"syslog zone":      func(o *Options) { o.Syslog = "[fe80::1%eth0]:5514" },
		"listen ip":        func(o *Options) { o.ListenIP = "127.0.0.1:80" },
		"listen injection": func(o *Options) { o.ListenIP = "127.0.0.1; include x" },
		"http port":        func(o *Options) { o.HTTPPort = 70000 },
		"acme no port":     func(o *Options) { o.ACMEChallenge = "127.0.0.1" },
		"acme name":        func(o *Options) { o.ACMEChallenge = "certs:8402; x" },
	} {
		o := testOpts()
		mut(&o)
		if _, err := Render(nil, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := testOpts()
	o.StatusListen = "[::1]:8081"
	if _, err := Render(nil, o); err != nil {
		t.Errorf("IPv6 loopback status: %v", err)
	}
	// On an internal network: private clients may ask, nobody else.
	for _, listen := range []string{"0.0.0.0:8081", "10.1.2.3:8081"} {
		o := testOpts()
		o.StatusListen = listen
		cfg, err := Render(nil, o)
		if err != nil {
			t.Errorf("status on %s: %v", listen, err)
			continue
		}
		if m := string(cfg.Files[MainFile]); !strings.Contains(m, "allow 10.0.0.0/8;") || !strings.Contains(m, "allow fc00::/7;\n        deny all;") {
			t.Errorf("status on %s does not admit private networks only:\n%s", listen, m)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.0.0.5"} {
		o := testOpts()
		o.ListenIP = ip
		cfg, err := Render([]events.RoutingState{state("web", events.AppSpec{Networking: events.Networking{ExternalPort: 8080}}, inst("a", "10.0.0.1", 80))}, o)
		if err != nil {
			t.Errorf("listen ip %s: %v", ip, err)
		} else if want := "listen " + netip.AddrPortFrom(netip.MustParseAddr(ip), 8080).String() + ";"; !strings.Contains(string(cfg.Files[AppFile("web")]), want) {
			t.Errorf("listen ip %s: no %q", ip, want)
		}
	}
	for _, addr := range []string{"metrics:5514", "metrics.orchestry.internal:514", "[::1]:5514", "10.1.2.3:5514"} {
		o := testOpts()
		o.Syslog = addr
		if _, err := Render(nil, o); err != nil {
			t.Errorf("syslog %s: %v", addr, err)
		}
	}
}

// TestParseBackValid is the property check over a spread of valid inputs:
// the parsed config holds only allowed directives and each user value as
// exactly one argument.
func TestParseBackValid(t *testing.T) {
	values := []string{"x", "#hash-start", "a b c", "text/html; charset", "(){}", "max-age=1, public", "~tilde", "'", "a'b", "[x]", "A|B", "*", "=", "<script>", "100%"}
	var states []events.RoutingState
	for i, v := range values {
		s := state("app"+string(rune('a'+i)), events.AppSpec{Networking: events.Networking{
			Domain: "app" + string(rune('a'+i)) + ".example.com", MaxBodySize: "5M",
			Headers: map[string]string{"X-Value": v, "X-Other": "o"},
		}}, inst("i", "10.0.0.1", 80))
		if err := s.App.Validate(); err != nil {
			continue // the grammar refuses it; nothing to check
		}
		states = append(states, s)
	}
	for _, k := range []string{"request_uri", "remote_addr", "header:X-Tenant", "cookie:sid", "cookie:my-sid"} {
		states = append(states, state("hash-"+strings.NewReplacer(":", "-", "_", "-").Replace(strings.ToLower(k)),
			events.AppSpec{LBMethod: events.LBHash, HashKey: k}, inst("i", "10.0.0.1", 80)))
	}
	states = append(states, state("wild", events.AppSpec{Networking: events.Networking{Domain: "*.wild.example.com"}}))
	cfg, err := Render(states, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkParsed(cfg, states); err != nil {
		t.Fatal(err)
	}
	nginxTest(t, states, "")
}

func TestADomainAwaitingItsCertificateStillAnswersACMEChallenges(t *testing.T) {
	states := []events.RoutingState{state("plain", events.AppSpec{Networking: events.Networking{Domain: "www.example.com"}}, inst("p", "10.0.0.1", 80))}
	opts := testOpts()
	opts.AwaitingCerts = []string{"new.example.com", "www.example.com", "new.example.com"}
	cfg, err := Render(states, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkParsed(cfg, states); err != nil {
		t.Fatal(err)
	}
	got := string(cfg.Files[awaitingFile])
	if strings.Count(got, "server {") != 1 || !strings.Contains(got, "server_name new.example.com;") ||
		!strings.Contains(got, "location ^~ /.well-known/acme-challenge/ {") || !strings.Contains(got, "proxy_pass http://127.0.0.1:8402;") {
		t.Fatalf("awaiting file:\n%s", got)
	}
	// Without a challenge responder, nothing; a hostile domain is refused.
	opts.ACMEChallenge = ""
	if cfg, err := Render(states, opts); err != nil || cfg.Files[awaitingFile] != nil {
		t.Fatalf("without ACMEChallenge: %v, file %q", err, cfg.Files[awaitingFile])
	}
	opts.ACMEChallenge, opts.AwaitingCerts = "127.0.0.1:8402", []string{"a.example.com; include /etc/passwd"}
	if _, err := Render(states, opts); err == nil {
		t.Fatal("a hostile awaiting domain was rendered")
	}
}
