// Package nodeconfig asks an NGINX node's renderer for its live config
// over NATS request/reply (events.RendererConfig) and formats it as text,
// for GET /v1/nodes/{node}/config.
package nodeconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
)

// DefaultTimeout bounds the wait for a renderer's answer.
const DefaultTimeout = 3 * time.Second

// ErrNoNode is wrapped by Fetch when no renderer answers for the node:
// none is subscribed (nats.ErrNoResponders) or none answered in time.
var ErrNoNode = errors.New("no renderer answered for the node")

// Client sends the requests. The zero Timeout means DefaultTimeout.
type Client struct {
	NC      *nats.Conn
	Timeout time.Duration
}

// Fetch returns node's live config. The node name is checked against the
// name grammar before it goes into a subject.
func (c Client) Fetch(ctx context.Context, node string) (events.NodeConfig, error) {
	if err := events.CheckName(node); err != nil {
		return events.NodeConfig{}, fmt.Errorf("node %q %w", node, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.NC.RequestWithContext(ctx, events.RendererConfig(node), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return events.NodeConfig{}, fmt.Errorf("node %s: %w", node, ErrNoNode)
	case err != nil:
		return events.NodeConfig{}, fmt.Errorf("node %s: request config: %w", node, err)
	}
	var cfg events.NodeConfig
	if err := json.Unmarshal(msg.Data, &cfg); err != nil {
		return events.NodeConfig{}, fmt.Errorf("node %s: decode config answer: %w", node, err)
	}
	if cfg.Error != "" {
		return cfg, fmt.Errorf("node %s: renderer: %s", node, cfg.Error)
	}
	return cfg, nil
}

// Text is cfg as one text: every file, sorted by path, preceded by a
// "# file: <path>" line, then a comment naming each omitted file.
func Text(cfg events.NodeConfig) string {
	files := slices.Clone(cfg.Files)
	slices.SortFunc(files, func(a, b events.ConfigFile) int { return strings.Compare(a.Path, b.Path) })
	var b strings.Builder
	for _, f := range files {
		b.WriteString("# file: " + f.Path + "\n")
		b.WriteString(f.Content)
		if f.Content != "" && !strings.HasSuffix(f.Content, "\n") {
			b.WriteByte('\n')
		}
	}
	for _, p := range cfg.Omitted {
		b.WriteString("# omitted (larger than one NATS message allows): " + p + "\n")
	}
	return b.String()
}
