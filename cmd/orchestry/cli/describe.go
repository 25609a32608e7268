package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/status"
)

func (a *app) describeCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe app NAME",
		Short: "Show an app in detail: spec, instance health, nodes, certificates, events",
		Long: `describe app shows everything known about one app:

  - its spec and revision                        GET /v1/apps/{name}
  - each instance's health: state, since, last error   GET /v1/apps/{name}/instances
  - per NGINX node, the revision it serves, its config version and last
    render outcome or error, and the problems that kept the app out of a
    config                                         GET /v1/apps/{name}/rollout, /v1/status
  - the certificate of its domain                  GET /v1/certs
  - its 20 most recent events                      GET /v1/events?app={name}&limit=20

Parts an older API does not serve are left out with a note. -o json and
-o yaml print the answers as one object.`,
		Example: `  orchestry describe app shop
  orchestry describe app shop -o yaml`,
		Args:              exactArgs("app", "NAME"),
		ValidArgsFunction: a.completeKindApp("app"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if k, ok := resources[strings.ToLower(args[0])]; !ok || k != "apps" {
				return usageErrorf("describe supports apps only: orchestry describe app NAME")
			}
			if err := checkFormat(output, FormatTable, FormatJSON, FormatYAML); err != nil {
				return err
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			d, err := gather(cmd.Context(), c, args[1])
			if err != nil {
				return err
			}
			if structured(output) {
				return writeValue(a.stdout(), output, d.raw)
			}
			return d.write(a.stdout(), time.Now())
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table, json or yaml")
	return cmd
}

// description is everything describe shows of one app.
type description struct {
	app       api.AppView
	instances []api.InstanceView
	rollout   *api.RolloutView
	nodes     []status.Node
	certs     []api.CertView
	events    []feed.EventRecord
	// notes say which parts could not be read, and why.
	notes []string
	raw   map[string]json.RawMessage
}

// gather reads the app and whatever else the API serves about it. Only a
// failure to read the app itself is an error.
func gather(ctx context.Context, c *Client, name string) (*description, error) {
	d := &description{raw: map[string]json.RawMessage{}}
	v, raw, err := c.App(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("describe app %s: %w", name, err)
	}
	d.app, d.raw["app"] = v, raw
	optional := func(what string, err error) bool {
		if err == nil {
			return true
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.NoEndpoint() {
			d.notes = append(d.notes, what+": not served by this API")
		} else {
			d.notes = append(d.notes, what+": "+err.Error())
		}
		return false
	}
	if iv, raw, err := c.Instances(ctx, name); optional("instances", err) {
		d.instances, d.raw["instances"] = iv.Instances, raw
	}
	if r, raw, err := c.Rollout(ctx, name); optional("rollout", err) {
		d.rollout, d.raw["rollout"] = &r, raw
	}
	if st, raw, err := c.Status(ctx); optional("status", err) {
		d.nodes, d.raw["status"] = st.Nodes, raw
	}
	if domain := v.App.Spec.Networking.Domain; domain != "" {
		if certs, _, err := c.Certs(ctx); optional("certificates", err) {
			for _, ct := range certs {
				if ct.Domain == domain || slices.Contains(ct.Apps, name) {
					d.certs = append(d.certs, ct)
				}
			}
			d.raw["certs"] = mustMarshal(d.certs)
		}
	}
	q := url.Values{"app": {name}, "limit": {"20"}}
	if evs, _, err := c.Events(ctx, q); optional("events", err) {
		d.events, d.raw["events"] = evs, mustMarshal(evs)
	}
	return d, nil
}

// write prints the description for a person.
func (d *description) write(w io.Writer, now time.Time) error {
	a := d.app.App
	n := a.Spec.Networking
	field := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "%-12s %s\n", k+":", v)
	}
	field("Name", a.Metadata.Name)
	field("Revision", strconv.FormatUint(d.app.Revision, 10))
	field("Labels", pairs(a.Metadata.Labels))
	field("Domain", n.Domain)
	port := ""
	if n.ExternalPort != 0 {
		port = strconv.Itoa(n.ExternalPort)
	}
	field("Port", port)
	field("TLS", yesNo(n.SSL.Enabled))
	field("LB method", a.Spec.LBMethod)
	fmt.Fprintln(w, "Spec:")
	y, err := jsonToYAML(mustMarshal(a))
	if err != nil {
		return err
	}
	writeIndented(w, y)

	fmt.Fprintf(w, "\nInstances (%d):\n", len(d.instances))
	if len(d.instances) > 0 {
		var buf bytes.Buffer
		t := newTable(&buf, "ID", "ADDRESS", "WEIGHT", "STATE", "SINCE", "FAILURES", "LAST ERROR")
		for _, in := range d.instances {
			state, since, fails, last := "unknown", "", "", ""
			if h := in.Health; h != nil {
				state, since, fails, last = h.State, timestamp(&h.Since)+" ("+age(h.Since, now)+")", strconv.Itoa(h.ConsecutiveFailures), h.LastError
			}
			weight := ""
			if in.Weight != 0 {
				weight = strconv.Itoa(in.Weight)
			}
			t.row(in.ID, address(in.Instance), weight, state, since, fails, last)
		}
		if err := t.flush(); err != nil {
			return err
		}
		writeIndented(w, buf.Bytes())
	}

	fmt.Fprintln(w, "\nNGINX nodes:")
	if rows := d.nodeRows(); len(rows) > 0 {
		var buf bytes.Buffer
		t := newTable(&buf, "NODE", "SERVES REVISION", "LIVE", "CONFIG VERSION", "LAST OUTCOME", "ERROR")
		for _, r := range rows {
			t.row(r...)
		}
		if err := t.flush(); err != nil {
			return err
		}
		writeIndented(w, buf.Bytes())
	} else {
		fmt.Fprintln(w, "  none has reported")
	}
	if problems := d.problems(); len(problems) > 0 {
		fmt.Fprintln(w, "\nProblems:")
		for _, p := range problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}

	if n.Domain != "" {
		fmt.Fprintln(w, "\nCertificates:")
		if len(d.certs) == 0 {
			fmt.Fprintln(w, "  none")
		} else {
			var buf bytes.Buffer
			if err := writeCerts(&buf, d.certs, true); err != nil {
				return err
			}
			writeIndented(w, buf.Bytes())
		}
	}

	fmt.Fprintln(w, "\nEvents:")
	if len(d.events) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		var buf bytes.Buffer
		t := newTable(&buf, "TIME", "SUBJECT", "SUMMARY")
		for _, e := range d.events {
			t.row(timestamp(&e.Time), e.Subject, e.Summary)
		}
		if err := t.flush(); err != nil {
			return err
		}
		writeIndented(w, buf.Bytes())
	}
	if len(d.notes) > 0 {
		fmt.Fprintln(w, "\nNot shown:")
		for _, n := range d.notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	return nil
}

// nodeRows are the node table's rows: from the rollout when the API has
// one, else from each node's last report.
func (d *description) nodeRows() [][]string {
	var rows [][]string
	if d.rollout != nil {
		for _, n := range d.rollout.Nodes {
			rows = append(rows, []string{n.Node, strconv.FormatUint(n.ServedRevision, 10), yesNo(n.ServedRevision >= d.app.Revision),
				strconv.FormatUint(n.Version, 10), n.Outcome, n.Error})
		}
		return rows
	}
	name := d.app.App.Metadata.Name
	for _, n := range d.nodes {
		served, live := "", ""
		if rev, ok := n.ServedRevisions[name]; ok {
			served, live = strconv.FormatUint(rev, 10), yesNo(rev >= d.app.Revision)
		}
		rows = append(rows, []string{n.Node, served, live, strconv.FormatUint(n.Version, 10), n.Outcome, n.Error})
	}
	return rows
}

// problems are the reasons nodes gave for leaving the app out of a config.
func (d *description) problems() []string {
	var out []string
	for _, n := range d.nodes {
		for _, p := range n.Problems {
			if p.App == d.app.App.Metadata.Name {
				out = append(out, n.Node+": "+p.Reason)
			}
		}
	}
	return out
}

// writeIndented writes text with every line indented by two spaces.
func writeIndented(w io.Writer, text []byte) {
	for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// mustMarshal marshals a value that always marshals (API types).
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}
