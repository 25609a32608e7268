package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/services/routing/feed"
)

func (a *app) eventsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Recent events, or the live event stream",
		Long: `events shows Orchestry's events (routing changes, registrations, health
transitions, renders, certificates, rejections): the recent ones
(GET /v1/events) or the live stream (GET /v1/events/stream).`,
		Example: `  orchestry events tail
  orchestry events tail 'instance.registered.>' -o json
  orchestry events list --app shop --limit 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.eventsTailCommand(), a.eventsListCommand())
	return cmd
}

func (a *app) eventsTailCommand() *cobra.Command {
	var output, appName string
	cmd := &cobra.Command{
		Use:   "tail [SUBJECT]",
		Short: "Follow the live event stream (Ctrl-C to stop)",
		Long: `tail prints each event as it happens, one line per event: its time, subject
and a summary; with -o json, the API's event record as one JSON object per
line. SUBJECT filters by NATS subject (wildcards * and > work, e.g.
'config.rendered.*'); --app keeps one app's events. When the stream breaks,
tail reconnects and resumes after the last event it printed. Ctrl-C ends it
with exit code 0.`,
		Example: `  orchestry events tail
  orchestry events tail 'instance.>'
  orchestry events tail --app shop -o json | jq .summary`,
		Args: cobra.MaximumNArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output, FormatTable, FormatJSON); err != nil {
				return err
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			q := url.Values{}
			if len(args) == 1 {
				q.Set("subject", args[0])
			}
			if appName != "" {
				q.Set("app", appName)
			}
			return tail(cmd.Context(), c, q, func(data []byte) error {
				return writeEvent(a.stdout(), output, data)
			}, a.stderr())
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table (one line per event) or json (one object per line)")
	cmd.Flags().StringVar(&appName, "app", "", "only this app's events")
	return cmd
}

func (a *app) eventsListCommand() *cobra.Command {
	var output, appName, subject string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "Show recent events, oldest first",
		Example: `  orchestry events list --app shop --limit 50`,
		Args:    cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output, FormatTable, FormatJSON, FormatYAML); err != nil {
				return err
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if appName != "" {
				q.Set("app", appName)
			}
			if subject != "" {
				q.Set("subject", subject)
			}
			evs, raw, err := c.Events(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("list events: %w", err)
			}
			if structured(output) {
				return writeRaw(a.stdout(), output, raw)
			}
			for _, e := range evs {
				fmt.Fprintln(a.stdout(), EventLine(e))
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", FormatTable, "output format: table, json or yaml")
	cmd.Flags().StringVar(&appName, "app", "", "only this app's events")
	cmd.Flags().StringVar(&subject, "subject", "", "only events on this subject (wildcards * and >)")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many events")
	return cmd
}

// EventLine renders an event for a person: time, subject, summary.
func EventLine(e feed.EventRecord) string {
	summary := e.Summary
	if summary == "" {
		summary = e.Type
	}
	return fmt.Sprintf("%s  %-36s  %s", e.Time.UTC().Format(time.RFC3339), e.Subject, summary)
}

// writeEvent prints one event of the stream (its data, an EventRecord).
func writeEvent(w io.Writer, format string, data []byte) error {
	if format == FormatJSON {
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return fmt.Errorf("event is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	var e feed.EventRecord
	if err := json.Unmarshal(data, &e); err != nil {
		_, err := fmt.Fprintf(w, "%s\n", data)
		return err
	}
	_, err := fmt.Fprintln(w, EventLine(e))
	return err
}

// tail follows the event stream until ctx ends, handing each event's data
// to emit. It reconnects after a break, resuming after the last event
// (Last-Event-ID); an error before the first connection is returned.
func tail(ctx context.Context, c *Client, q url.Values, emit func([]byte) error, status io.Writer) error {
	lastID := ""
	everConnected := false
	base := 500 * time.Millisecond
	delay := base
	for {
		connected, id, retry, err := c.stream(ctx, q, lastID, emit)
		if id != "" {
			lastID = id
		}
		if retry > 0 {
			base = retry
		}
		if ctx.Err() != nil {
			return nil // Ctrl-C: a clean end
		}
		everConnected = everConnected || connected
		var ae *APIError
		var we *writeError
		switch {
		case errors.As(err, &we):
			return we.err
		case errors.As(err, &ae) && ae.NoEndpoint():
			return errors.New("this API does not serve the event stream (GET /v1/events/stream)")
		case !everConnected && err != nil, errors.As(err, &ae):
			return fmt.Errorf("event stream: %w", err)
		}
		if connected {
			delay = base
		}
		reason := "the API closed it"
		if err != nil {
			reason = err.Error()
		}
		fmt.Fprintf(status, "event stream interrupted (%s); reconnecting in %s\n", reason, delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// stream reads the event stream once. It reports whether the API answered
// with the stream, the id of the last event read and the reconnection time
// the API asked for.
func (c *Client) stream(ctx context.Context, q url.Values, lastID string, emit func([]byte) error) (bool, string, time.Duration, error) {
	path := "/v1/events/stream"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastID != "" {
		h.Set("Last-Event-ID", lastID)
	}
	resp, err := c.send(ctx, http.MethodGet, path, "", nil, h)
	if err != nil {
		return false, "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return false, "", 0, c.apiError(http.MethodGet, path, resp.StatusCode, b)
	}
	r := NewSSEReader(resp.Body)
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return true, r.LastID(), r.Retry(), err
		}
		if err := emit([]byte(ev.Data)); err != nil {
			return true, r.LastID(), r.Retry(), &writeError{err: err}
		}
	}
}

// writeError is a failure to print an event: it ends tail.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
