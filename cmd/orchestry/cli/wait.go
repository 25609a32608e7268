package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/orchestry/orchestry/services/routing/api"
)

// RolloutProgress is which NGINX nodes serve at least a revision of an app.
type RolloutProgress struct {
	Live    []string
	Lagging []api.RolloutNode
}

// Done reports whether every node serves the revision.
func (p RolloutProgress) Done() bool { return len(p.Lagging) == 0 }

// Progress splits a rollout's nodes into those serving revision (or a newer
// one) and the others, each sorted by node.
func Progress(r api.RolloutView, revision uint64) RolloutProgress {
	var p RolloutProgress
	for _, n := range r.Nodes {
		if n.ServedRevision >= revision {
			p.Live = append(p.Live, n.Node)
		} else {
			p.Lagging = append(p.Lagging, n)
		}
	}
	slices.Sort(p.Live)
	slices.SortFunc(p.Lagging, func(a, b api.RolloutNode) int { return strings.Compare(a.Node, b.Node) })
	return p
}

// describeLagging names each lagging node with its last outcome and error.
func describeLagging(ns []api.RolloutNode) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		s := fmt.Sprintf("%s (serves revision %d", n.Node, n.ServedRevision)
		if n.Outcome != "" {
			s += ", last render " + n.Outcome
		}
		if n.Error != "" {
			s += ": " + n.Error
		}
		parts[i] = s + ")"
	}
	return strings.Join(parts, ", ")
}

// waitRollout polls the app's rollout until every NGINX node serves
// revision, writing progress to w each time it changes. It fails with exit
// code ExitTimeout when timeout passes first.
func waitRollout(ctx context.Context, c *Client, w io.Writer, name string, revision uint64, timeout, every time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	var lastProgress RolloutProgress
	for {
		r, _, err := c.Rollout(ctx, name)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.NoEndpoint():
			return fmt.Errorf("cannot --wait: this API does not serve GET /v1/apps/{name}/rollout (an older routing service)")
		case err != nil && ctx.Err() != nil:
			// The time ran out during the request.
		case err != nil:
			return fmt.Errorf("wait for %s revision %d: %w", name, revision, err)
		default:
			p := Progress(r, revision)
			lastProgress = p
			// No node yet (a stack just started): wait for one rather
			// than report a rollout nobody serves as done.
			line := "no NGINX node has reported yet"
			if len(r.Nodes) > 0 {
				line = fmt.Sprintf("%d/%d nodes serve revision %d", len(p.Live), len(r.Nodes), revision)
			}
			if len(p.Live) > 0 {
				line += " (live: " + strings.Join(p.Live, ", ") + ")"
			}
			if !p.Done() {
				line += "; waiting for " + describeLagging(p.Lagging)
			}
			if line != last {
				fmt.Fprintf(w, "%s: %s\n", name, line)
				last = line
			}
			if len(r.Nodes) > 0 && p.Done() {
				fmt.Fprintf(w, "app/%s revision %d is live on every node (%d) after %s\n", name, revision, len(r.Nodes), time.Since(start).Round(10*time.Millisecond))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				msg := fmt.Sprintf("timed out after %s waiting for app %s revision %d", timeout, name, revision)
				switch {
				case len(lastProgress.Lagging) > 0:
					msg += "; not served by " + describeLagging(lastProgress.Lagging)
				case len(lastProgress.Live) == 0:
					msg += "; no NGINX node has reported"
				}
				return &ExitError{Code: ExitTimeout, Err: errors.New(msg)}
			}
			return fmt.Errorf("wait for %s: %w", name, ctx.Err())
		case <-time.After(every):
		}
	}
}
