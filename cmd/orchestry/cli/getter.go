package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/status"
)

// getter fetches one kind of resource and prints it in its format.
type getter struct {
	c      *Client
	w      io.Writer
	errW   io.Writer
	format string
	now    time.Time
}

func (g getter) wide() bool { return g.format == FormatWide }

// none says on standard error that a table would be empty, kubectl style;
// it reports whether it did.
func (g getter) none(n int, what string) bool {
	if n > 0 {
		return false
	}
	fmt.Fprintf(g.errW, "No %s found.\n", what)
	return true
}

func (g getter) apps(ctx context.Context, name string) error {
	if name != "" {
		v, raw, err := g.c.App(ctx, name)
		if err != nil {
			return fmt.Errorf("get app %s: %w", name, err)
		}
		if structured(g.format) {
			return writeRaw(g.w, g.format, raw)
		}
		return writeApps(g.w, []api.AppView{v}, g.wide())
	}
	apps, raw, err := g.c.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	if structured(g.format) {
		return writeRaw(g.w, g.format, raw)
	}
	if g.none(len(apps), "apps") {
		return nil
	}
	return writeApps(g.w, apps, g.wide())
}

func (g getter) instances(ctx context.Context, app, id string) error {
	v, raw, err := g.c.Instances(ctx, app)
	if err != nil {
		return fmt.Errorf("list instances of %s: %w", app, err)
	}
	list := v.Instances
	if id != "" {
		list = named(list, func(in api.InstanceView) string { return in.ID }, id)
		if len(list) == 0 {
			return notFound("instance", app+"/"+id)
		}
	}
	if structured(g.format) {
		return g.writeAnswer(raw, "instances", "id", id)
	}
	if g.none(len(list), "instances of "+app) {
		return nil
	}
	return writeInstances(g.w, list, g.wide(), g.now)
}

func (g getter) routes(ctx context.Context, app, id string) error {
	v, raw, err := g.c.Routes(ctx, app)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", app, err)
	}
	list := v.Routes
	if id != "" {
		list = named(list, func(r events.Rule) string { return r.ID }, id)
		if len(list) == 0 {
			return notFound("route", app+"/"+id)
		}
	}
	if structured(g.format) {
		return g.writeAnswer(raw, "routes", "id", id)
	}
	if g.none(len(list), "routes of "+app) {
		return nil
	}
	return writeRoutes(g.w, list, g.wide())
}

func (g getter) certs(ctx context.Context, domain string) error {
	certs, raw, err := g.c.Certs(ctx)
	if err != nil {
		return fmt.Errorf("list certificates: %w", err)
	}
	if domain != "" {
		certs = named(certs, func(c api.CertView) string { return c.Domain }, domain)
		if len(certs) == 0 {
			return notFound("certificate for domain", domain)
		}
	}
	if structured(g.format) {
		return g.writeAnswer(raw, "certs", "domain", domain)
	}
	if g.none(len(certs), "certificates") {
		return nil
	}
	return writeCerts(g.w, certs, g.wide())
}

func (g getter) nodes(ctx context.Context, name string) error {
	st, raw, err := g.c.Status(ctx)
	if err != nil {
		return fmt.Errorf("get status: %w", err)
	}
	nodes := st.Nodes
	if name != "" {
		nodes = named(nodes, func(n status.Node) string { return n.Node }, name)
		if len(nodes) == 0 {
			return notFound("node", name)
		}
	}
	if structured(g.format) {
		return g.writeAnswer(raw, "nodes", "node", name)
	}
	if g.none(len(nodes), "NGINX nodes (none has reported yet)") {
		return nil
	}
	return writeNodes(g.w, nodes, g.wide(), g.now)
}

// named returns the items whose name (as name gives it) is want.
func named[T any](items []T, name func(T) string, want string) []T {
	var out []T
	for _, it := range items {
		if name(it) == want {
			out = append(out, it)
		}
	}
	return out
}

// writeAnswer prints the API's answer raw for -o json and -o yaml: the whole
// answer, or, for a NAME, the element of its list under key whose field
// idField is that name.
func (g getter) writeAnswer(raw []byte, key, idField, name string) error {
	if name != "" {
		raw, _ = pick(raw, key, idField, name)
	}
	return writeRaw(g.w, g.format, raw)
}
