package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/services/routing/status"
)

func (a *app) statusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every NGINX node's config version, last outcome and hash, and the app count",
		Long: `status shows, from GET /v1/status and GET /v1/apps, how many apps are declared
and, per NGINX node, the config version it runs, the outcome of its last
render (applied, unchanged, invalid, failed) with its error, the config's
hash, the revision it serves of each app and when it last reported.`,
		Example: `  orchestry status
  orchestry status -o json`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output, FormatTable, FormatJSON, FormatYAML); err != nil {
				return err
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			st, _, err := c.Status(cmd.Context())
			if err != nil {
				return fmt.Errorf("get status: %w", err)
			}
			apps, _, err := c.Apps(cmd.Context())
			if err != nil {
				return fmt.Errorf("list apps: %w", err)
			}
			if structured(output) {
				nodes := make([]statusNode, len(st.Nodes))
				for i, n := range st.Nodes {
					nodes[i] = statusNode{Node: n, ServedRevisions: n.ServedRevisions}
				}
				return writeValue(a.stdout(), output, struct {
					API   string       `json:"api"`
					Apps  int          `json:"apps"`
					Nodes []statusNode `json:"nodes"`
				}{c.conn.URL, len(apps), nodes})
			}
			w := a.stdout()
			fmt.Fprintf(w, "API:    %s\n", c.conn.URL)
			fmt.Fprintf(w, "Apps:   %d\n", len(apps))
			fmt.Fprintf(w, "Nodes:  %d\n", len(st.Nodes))
			if len(st.Nodes) == 0 {
				fmt.Fprintln(w, "\nNo NGINX node has reported yet.")
				return nil
			}
			fmt.Fprintln(w)
			t := newTable(w, "NODE", "VERSION", "OUTCOME", "HASH", "APPS", "SERVED", "REPORTED", "ERROR")
			now := time.Now()
			for _, n := range st.Nodes {
				t.row(n.Node, fmt.Sprint(n.Version), n.Outcome, shortHash(n.Hash), fmt.Sprint(n.Apps),
					pairs(n.ServedRevisions), age(n.ReceivedAt, now)+" ago", short(n.Error, 60))
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, n := range st.Nodes {
				for _, p := range n.Problems {
					fmt.Fprintf(w, "problem on %s: app %s: %s\n", n.Node, p.App, p.Reason)
				}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table, json or yaml")
	return cmd
}

// statusNode is a node as status -o json and -o yaml print it: the API's
// status.Node, but without served_revisions while the node serves no app.
// The document is the CLI's own (the API's address, the app count and the
// nodes), and it has always left the empty map out.
type statusNode struct {
	status.Node
	// ServedRevisions hides the embedded field of the same name, to add
	// omitempty.
	ServedRevisions map[string]uint64 `json:"served_revisions,omitempty"`
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the NGINX config a node runs",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var node string
	show := &cobra.Command{
		Use:   "show --node NODE",
		Short: "Print the config files NGINX node NODE runs",
		Long: `show prints GET /v1/nodes/{node}/config: each config file of the node's live
config after a "# file: <path>" line. Without --node, the only node (when
there is exactly one) is shown.`,
		Example: `  orchestry config show --node nginx-1
  orchestry config show --node nginx-1 | less`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			if node == "" {
				st, _, err := c.Status(cmd.Context())
				if err != nil {
					return fmt.Errorf("find the node: %w", err)
				}
				if len(st.Nodes) != 1 {
					names := make([]string, len(st.Nodes))
					for i, n := range st.Nodes {
						names[i] = n.Node
					}
					return usageErrorf("--node is required: there are %d nodes %v", len(st.Nodes), names)
				}
				node = st.Nodes[0].Node
			}
			text, err := c.NodeConfig(cmd.Context(), node)
			if err != nil {
				return fmt.Errorf("config of node %s: %w", node, err)
			}
			_, err = a.stdout().Write(text)
			return err
		}),
	}
	show.Flags().StringVar(&node, "node", "", "the NGINX node (see orchestry get nodes)")
	cmd.AddCommand(show)
	return cmd
}

// Version is the binary's build: the VCS revision it was built from and
// the Go version.
type Version struct {
	Revision string `json:"revision"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Module   string `json:"module_version,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// String renders the version on one line.
func (v Version) String() string {
	s := "orchestry " + v.Revision
	if v.Modified {
		s += "-dirty"
	}
	if v.Time != "" {
		s += " (" + v.Time + ")"
	}
	return s + " " + v.Go + " " + v.Platform
}

// buildVersion reads the version from the binary's build information.
func buildVersion() Version {
	v := Version{Revision: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Module = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Revision == "unknown" && v.Module != "" {
		v.Revision = v.Module
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the binary's version (VCS revision) and Go version",
		Long: `version prints the git revision the binary was built from (with -dirty when
the tree had changes), the commit time, and the Go version. A binary built
with -buildvcs=false shows "unknown".`,
		Example: `  orchestry version
  orchestry version -o json`,
		Args: cobra.NoArgs,
		RunE: run(func(_ *cobra.Command, _ []string) error {
			if err := checkFormat(output, FormatTable, FormatJSON, FormatYAML); err != nil {
				return err
			}
			v := buildVersion()
			if structured(output) {
				return writeValue(a.stdout(), output, v)
			}
			_, err := fmt.Fprintln(a.stdout(), v)
			return err
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table (one line), json or yaml")
	return cmd
}
