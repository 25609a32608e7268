package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/orchestry/orchestry/services/routing/spec"
)

// Manifest is one app document of an apply file.
type Manifest struct {
	// Name is metadata.name.
	Name string
	// Source names where the document came from ("app.yaml", "app.yaml#2").
	Source string
	// Body is the document as sent to the API.
	Body []byte
	// ContentType is application/json or application/yaml.
	ContentType string
}

// ParseManifests splits an apply file into its documents: one JSON object,
// or one or more YAML documents separated by "---". Each must name its app
// in metadata.name.
func ParseManifests(source string, data []byte) ([]Manifest, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", source)
	}
	if trimmed[0] == '{' {
		m := Manifest{Source: source, Body: trimmed, ContentType: "application/json"}
		name, err := manifestName(trimmed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		m.Name = name
		return []Manifest{m}, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not YAML or JSON: %w", source, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue // an empty document between two "---"
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no document in the file", source)
	}
	out := make([]Manifest, 0, len(docs))
	for i, n := range docs {
		m := Manifest{Source: source, ContentType: "application/yaml", Body: data}
		if len(docs) > 1 {
			m.Source = fmt.Sprintf("%s#%d", source, i+1)
			b, err := yaml.Marshal(n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Source, err)
			}
			m.Body = b
		}
		name, err := manifestName(m.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Source, err)
		}
		m.Name = name
		out = append(out, m)
	}
	return out, nil
}

// manifestName reads metadata.name from a YAML or JSON document.
func manifestName(body []byte) (string, error) {
	var doc struct {
		Metadata struct {
			Name any `yaml:"name"`
		} `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("not YAML or JSON: %w", err)
	}
	name, ok := doc.Metadata.Name.(string)
	if !ok || name == "" {
		return "", errors.New("metadata.name is required: it names the app to create or update")
	}
	return name, nil
}

// ApplyResult is what apply did to one app.
type ApplyResult struct {
	Name     string
	Action   string // "created", "configured" or "unchanged"
	Revision uint64
	Changes  []Change
	Warnings []string
}

// String renders the result's first line ("app/shop configured (revision 7)").
func (r ApplyResult) String() string {
	return fmt.Sprintf("app/%s %s (revision %d)", r.Name, r.Action, r.Revision)
}

func (a *app) applyCommand() *cobra.Command {
	var files []string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update apps from a file (YAML or JSON)",
		Long: `apply creates or updates each app of the file: the same document as the body
of PUT /v1/apps/{name} (apiVersion v1, kind App, metadata.name, spec, ...;
several YAML documents may be separated by "---"). It prints what changed:
created, unchanged (nothing is written then), or each field that differs:

  app/shop configured (revision 14)
    ~ spec.lb_method: round_robin -> least_conn
    + spec.retries.tries: 3

With --wait it then follows GET /v1/apps/{name}/rollout until every NGINX node
serves the new revision, and exits with code 4 naming the nodes that do not
when --timeout passes first.`,
		Example: `  orchestry apply -f app.yaml
  orchestry apply -f app.yaml --wait --timeout 2m
  cat app.json | orchestry apply -f -`,
		Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageErrorf("apply needs -f FILE (or -f - for standard input)")
			}
			var all []Manifest
			for _, f := range files {
				data, src, err := a.readFile(f)
				if err != nil {
					return err
				}
				ms, err := ParseManifests(src, data)
				if err != nil {
					return err
				}
				all = append(all, ms...)
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			for _, m := range all {
				res, err := applyOne(cmd.Context(), c, m)
				for _, w := range res.Warnings {
					fmt.Fprintf(a.stderr(), "Warning: %s: %s\n", m.Source, w)
				}
				if err != nil {
					return fmt.Errorf("apply %s (%s): %w", m.Name, m.Source, err)
				}
				fmt.Fprintln(a.stdout(), res)
				for _, ch := range res.Changes {
					fmt.Fprintf(a.stdout(), "  %s\n", ch)
				}
				if wait {
					if err := waitRollout(cmd.Context(), c, a.stderr(), res.Name, res.Revision, timeout, 500*time.Millisecond); err != nil {
						return err
					}
				}
			}
			return nil
		}),
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "app file, YAML or JSON (- for standard input); may be repeated")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every NGINX node serves the change")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long --wait waits")
	return cmd
}

// readFile reads a file, or standard input for "-".
func (a *app) readFile(name string) ([]byte, string, error) {
	if name == "-" {
		b, err := io.ReadAll(a.opts.Stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read standard input: %w", err)
		}
		return b, "<stdin>", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, "", &ExitError{Code: ExitUsage, Err: fmt.Errorf("read app file: %w", err)}
	}
	return b, name, nil
}

// applyOne creates or updates one app. When the file, read as the API
// reads it, declares the app as it is stored, nothing is written.
func applyOne(ctx context.Context, c *Client, m Manifest) (ApplyResult, error) {
	res := ApplyResult{Name: m.Name}
	cur, _, err := c.App(ctx, m.Name)
	var ae *APIError
	exists := true
	switch {
	case errors.As(err, &ae) && ae.Status == 404 && !ae.NoEndpoint():
		exists = false
	case err != nil:
		return res, err
	}
	// The API's own parser tells whether the write would change anything;
	// when it cannot read the file, the API's answer says why.
	if local, warnings, perr := spec.Parse(m.Body, m.ContentType, m.Name); perr == nil && exists {
		changes, err := Diff(cur.App, local)
		if err != nil {
			return res, err
		}
		if len(changes) == 0 {
			res.Action, res.Revision, res.Warnings = "unchanged", cur.Revision, warnings
			return res, nil
		}
	}
	put, created, err := c.PutApp(ctx, m.Name, m.ContentType, m.Body)
	if err != nil {
		return res, err
	}
	res.Revision, res.Warnings = put.Revision, put.Warnings
	if created || !exists {
		res.Action = "created"
		return res, nil
	}
	if res.Changes, err = Diff(cur.App, put.App); err != nil {
		return res, err
	}
	res.Action = "configured"
	if len(res.Changes) == 0 {
		res.Action = "unchanged"
	}
	return res, nil
}
