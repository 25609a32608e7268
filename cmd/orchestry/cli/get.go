package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/status"
)

// resources maps every accepted spelling to the resource's name.
var resources = map[string]string{
	"apps": "apps", "app": "apps",
	"instances": "instances", "instance": "instances", "inst": "instances",
	"routes": "routes", "route": "routes", "rules": "routes", "rule": "routes",
	"certs": "certs", "cert": "certs", "certificates": "certs",
	"nodes": "nodes", "node": "nodes",
}

func (a *app) getCommand() *cobra.Command {
	var output, appName string
	cmd := &cobra.Command{
		Use:   "get apps|instances|routes|certs|nodes [NAME]",
		Short: "List apps, instances, routes, certificates or NGINX nodes",
		Long: `get lists one kind of resource as a table, or shows one by NAME.

  apps        GET /v1/apps
  instances   GET /v1/apps/{app}/instances (with health): needs --app APP or the app first
  routes      GET /v1/apps/{app}/routes: needs --app APP or the app first
  certs       GET /v1/certs (NAME is a domain)
  nodes       the NGINX nodes of GET /v1/status

-o wide adds columns; -o json and -o yaml print the API's answer (for one
NAME, that one object).`,
		Example: `  orchestry get apps
  orchestry get app shop -o yaml
  orchestry get instances shop -o wide
  orchestry get instances --app shop web-1 -o json
  orchestry get routes shop
  orchestry get certs
  orchestry get nodes -o wide`,
		Args:              cobra.RangeArgs(1, 3),
		ValidArgsFunction: a.completeGet,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output, FormatTable, FormatWide, FormatJSON, FormatYAML); err != nil {
				return err
			}
			kind, ok := resources[strings.ToLower(args[0])]
			if !ok {
				return usageErrorf("unknown resource %q (use apps, instances, routes, certs or nodes)", args[0])
			}
			rest := args[1:]
			if kind == "instances" || kind == "routes" {
				if appName == "" {
					if len(rest) == 0 {
						return usageErrorf("get %s needs the app: orchestry get %s APP [ID], or --app APP", kind, kind)
					}
					appName, rest = rest[0], rest[1:]
				}
			}
			if len(rest) > 1 {
				return usageErrorf("get %s takes at most one NAME (got %s)", kind, strings.Join(rest, " "))
			}
			name := ""
			if len(rest) == 1 {
				name = rest[0]
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			g := getter{c: c, w: a.stdout(), errW: a.stderr(), format: output, now: time.Now()}
			ctx := cmd.Context()
			switch kind {
			case "apps":
				return g.apps(ctx, name)
			case "instances":
				return g.instances(ctx, appName, name)
			case "routes":
				return g.routes(ctx, appName, name)
			case "certs":
				return g.certs(ctx, name)
			}
			return g.nodes(ctx, name)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table, wide, json or yaml")
	cmd.Flags().StringVar(&appName, "app", "", "the app (instances and routes)")
	return cmd
}

// pick returns the element of the JSON list under key in raw whose field
// idField equals name, as raw JSON.
func pick(raw []byte, key, idField, name string) ([]byte, bool) {
	var list map[string][]map[string]json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, false
	}
	for _, item := range list[key] {
		var id string
		if json.Unmarshal(item[idField], &id) == nil && id == name {
			b, err := json.Marshal(item)
			return b, err == nil
		}
	}
	return nil, false
}

// notFound is the error of a NAME missing from a list (exit code 5).
func notFound(kind, name string) error {
	return &ExitError{Code: ExitNotFound, Err: fmt.Errorf("%s %q not found", kind, name)}
}

// structured reports whether the format prints the API's answer.
func structured(format string) bool { return format == FormatJSON || format == FormatYAML }

// address renders an instance's ip:port.
func address(in events.Instance) string {
	return net.JoinHostPort(in.IP, strconv.Itoa(in.Port))
}

// writeApps prints apps as a table.
func writeApps(w io.Writer, apps []api.AppView, wide bool) error {
	h := []string{"NAME", "DOMAIN", "PORT", "LB", "INSTANCES", "REVISION"}
	if wide {
		h = append(h, "TLS", "ROUTES", "HEALTHCHECK", "LABELS")
	}
	t := newTable(w, h...)
	for _, v := range apps {
		s := v.App.Spec
		port := ""
		if s.Networking.ExternalPort != 0 {
			port = strconv.Itoa(s.Networking.ExternalPort)
		}
		row := []string{v.App.Metadata.Name, s.Networking.Domain, port, s.LBMethod, strconv.Itoa(len(v.Instances)), strconv.FormatUint(v.Revision, 10)}
		if wide {
			hc := ""
			if v.App.HealthCheck != nil {
				hc = v.App.HealthCheck.Path
				if hc == "" {
					hc = "yes"
				}
			}
			row = append(row, yesNo(s.Networking.SSL.Enabled), strconv.Itoa(len(s.Rules)), hc, pairs(v.App.Metadata.Labels))
		}
		t.row(row...)
	}
	return t.flush()
}

// pairs renders a map as k=v,k=v sorted by key: an app's labels, or the
// revision a node serves per app.
func pairs[V any](m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, ",")
}

// writeInstances prints instances with their health as a table.
func writeInstances(w io.Writer, ins []api.InstanceView, wide bool, now time.Time) error {
	h := []string{"ID", "ADDRESS", "WEIGHT", "HEALTH", "SINCE"}
	if wide {
		h = append(h, "BACKUP", "DRAINING", "LOAD BAND", "FAILURES", "LAST ERROR")
	}
	t := newTable(w, h...)
	for _, in := range ins {
		weight := ""
		if in.Weight != 0 {
			weight = strconv.Itoa(in.Weight)
		}
		state, since, failures, lastErr := "unknown", "", "", ""
		if in.Health != nil {
			state, since = in.Health.State, age(in.Health.Since, now)
			failures, lastErr = strconv.Itoa(in.Health.ConsecutiveFailures), in.Health.LastError
		}
		if in.Draining && in.Health == nil {
			state = events.HealthDraining
		}
		row := []string{in.ID, address(in.Instance), weight, state, since}
		if wide {
			band := ""
			if in.LoadBand != 0 {
				band = strconv.Itoa(in.LoadBand)
			}
			row = append(row, yesNo(in.Backup), yesNo(in.Draining), band, failures, short(lastErr, 60))
		}
		t.row(row...)
	}
	return t.flush()
}

// writeRoutes prints routing rules as a table.
func writeRoutes(w io.Writer, rules []events.Rule, wide bool) error {
	h := []string{"ID", "PRIORITY", "PATH", "TARGET", "ENABLED"}
	if wide {
		h = append(h, "HEADERS", "SPLIT", "SETTINGS")
	}
	t := newTable(w, h...)
	for _, r := range rules {
		path := r.Match.Path
		if path != "" && r.Match.PathType != "" {
			path = r.Match.PathType + " " + path
		}
		target := r.Target
		if r.Split != nil {
			target = fmt.Sprintf("%s (%g%% to %s)", r.Target, r.Split.Percent, r.Split.Target)
		}
		row := []string{r.ID, strconv.Itoa(r.Priority), path, target, yesNo(r.IsEnabled())}
		if wide {
			hs := make([]string, len(r.Match.Headers))
			for i, m := range r.Match.Headers {
				hs[i] = strings.TrimSpace(m.Name + " " + m.Type + " " + m.Value)
			}
			split := ""
			if r.Split != nil {
				split = fmt.Sprintf("%g%% %s", r.Split.Percent, r.Split.Target)
				if r.Split.Sticky != nil {
					split += " sticky"
				}
			}
			row = append(row, strings.Join(hs, ", "), split, yesNo(r.HasSettings()))
		}
		t.row(row...)
	}
	return t.flush()
}

// writeCerts prints certificate states as a table.
func writeCerts(w io.Writer, certs []api.CertView, wide bool) error {
	h := []string{"DOMAIN", "APPS", "STATE", "NOT AFTER", "ISSUER"}
	if wide {
		h = append(h, "SERIAL", "LAST ERROR", "NEXT ATTEMPT")
	}
	t := newTable(w, h...)
	for _, c := range certs {
		row := []string{c.Domain, strings.Join(c.Apps, ","), c.State, timestamp(c.NotAfter), short(c.Issuer, 40)}
		if wide {
			row = append(row, short(c.Serial, 20), short(c.LastError, 60), timestamp(c.NextAttempt))
		}
		t.row(row...)
	}
	return t.flush()
}

// writeNodes prints the NGINX nodes' last reports as a table.
func writeNodes(w io.Writer, nodes []status.Node, wide bool, now time.Time) error {
	h := []string{"NODE", "VERSION", "OUTCOME", "APPS", "HASH", "REPORTED"}
	if wide {
		h = append(h, "ATTEMPTED", "STATUS ADDR", "SERVED", "PROBLEMS", "ERROR")
	}
	t := newTable(w, h...)
	for _, n := range nodes {
		row := []string{n.Node, strconv.FormatUint(n.Version, 10), n.Outcome, strconv.Itoa(n.Apps), shortHash(n.Hash), age(n.ReceivedAt, now)}
		if wide {
			row = append(row, strconv.FormatUint(n.Attempted, 10), n.StatusAddr, pairs(n.ServedRevisions),
				strconv.Itoa(len(n.Problems)), short(n.Error, 60))
		}
		t.row(row...)
	}
	return t.flush()
}
