package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/feed"
)

// Client calls the routing service's REST API.
type Client struct {
	conn Connection
	http *http.Client
	// timeout bounds each request (not streams).
	timeout time.Duration
	agent   string
}

// NewClient returns a client of the API named by conn.
func NewClient(conn Connection, timeout time.Duration) *Client {
	return &Client{conn: conn, http: &http.Client{}, timeout: timeout, agent: "orchestry-cli/" + buildVersion().Revision}
}

// response is an answer of the API with a 2xx status.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

// request sends one request and returns a 2xx answer; any other status is
// an *APIError, no answer a *ConnError.
func (c *Client) request(ctx context.Context, method, path, contentType string, body []byte) (response, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, contentType, body, nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return response{}, &ConnError{URL: c.conn.URL, Err: fmt.Errorf("%s %s: reading the answer: %w", method, path, err)}
	}
	if resp.StatusCode/100 != 2 {
		return response{}, c.apiError(method, path, resp.StatusCode, b)
	}
	return response{Status: resp.StatusCode, Body: b, Header: resp.Header}, nil
}

// send sends a request with the token and returns the response as it
// comes (the caller closes the body).
func (c *Client) send(ctx context.Context, method, path, contentType string, body []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.conn.URL+path, rd)
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s %s: %w", method, path, err)}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.conn.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.conn.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", c.agent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && ctx.Err() == context.Canceled {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, &ConnError{URL: c.conn.URL, Err: unwrapURLError(err)}
	}
	return resp, nil
}

// unwrapURLError drops url.Error's repetition of the method and URL, which
// ConnError already names.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// apiError reads Orchestry's error body from an answer with status code.
func (c *Client) apiError(method, path string, code int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: code}
	var eb api.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		e.Message, e.Code, e.Details = eb.Error, eb.Code, eb.Details
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 300 {
		e.Message = s
	}
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		if c.conn.Token != "" {
			e.TokenSource = c.conn.TokenSource
		}
	}
	return e
}

// getJSON GETs path and decodes the answer into out; it returns the raw
// body too.
func (c *Client) getJSON(ctx context.Context, path string, out any) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return nil, fmt.Errorf("GET %s: the answer is not the expected JSON: %w", path, err)
		}
	}
	return resp.Body, nil
}

// sendJSON sends body (JSON unless contentType says otherwise) and decodes
// the answer into out; it returns the status code.
func (c *Client) sendJSON(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	if contentType == "" {
		contentType = "application/json"
	}
	resp, err := c.request(ctx, method, path, contentType, body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(resp.Body) > 0 {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return 0, fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.Status, nil
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }

// Apps lists every app.
func (c *Client) Apps(ctx context.Context) ([]api.AppView, []byte, error) {
	var out api.AppsView
	raw, err := c.getJSON(ctx, "/v1/apps", &out)
	return out.Apps, raw, err
}

// App returns one app.
func (c *Client) App(ctx context.Context, name string) (api.AppView, []byte, error) {
	var out api.AppView
	raw, err := c.getJSON(ctx, "/v1/apps/"+pathEscape(name), &out)
	return out, raw, err
}

// PutApp creates or replaces an app from its file (YAML or JSON, as
// contentType says).
func (c *Client) PutApp(ctx context.Context, name, contentType string, body []byte) (api.PutResult, bool, error) {
	var out api.PutResult
	code, err := c.sendJSON(ctx, http.MethodPut, "/v1/apps/"+pathEscape(name), contentType, body, &out)
	return out, code == http.StatusCreated, err
}

// DeleteApp deletes an app.
func (c *Client) DeleteApp(ctx context.Context, name string) error {
	_, err := c.request(ctx, http.MethodDelete, "/v1/apps/"+pathEscape(name), "", nil)
	return err
}

// Instances lists an app's instances with their health.
func (c *Client) Instances(ctx context.Context, app string) (api.InstancesView, []byte, error) {
	var out api.InstancesView
	raw, err := c.getJSON(ctx, "/v1/apps/"+pathEscape(app)+"/instances", &out)
	return out, raw, err
}

// AddInstance registers (or replaces) an instance; created is false for a
// replacement.
func (c *Client) AddInstance(ctx context.Context, app string, in events.Instance) (api.InstanceResult, bool, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return api.InstanceResult{}, false, fmt.Errorf("encode instance: %w", err)
	}
	var out api.InstanceResult
	code, err := c.sendJSON(ctx, http.MethodPost, "/v1/apps/"+pathEscape(app)+"/instances", "", body, &out)
	return out, code == http.StatusCreated, err
}

// RemoveInstance deregisters an instance.
func (c *Client) RemoveInstance(ctx context.Context, app, id string) error {
	_, err := c.request(ctx, http.MethodDelete, "/v1/apps/"+pathEscape(app)+"/instances/"+pathEscape(id), "", nil)
	return err
}

// Routes lists an app's routing rules.
func (c *Client) Routes(ctx context.Context, app string) (api.RoutesView, []byte, error) {
	var out api.RoutesView
	raw, err := c.getJSON(ctx, "/v1/apps/"+pathEscape(app)+"/routes", &out)
	return out, raw, err
}

// DeleteRoute removes one routing rule.
func (c *Client) DeleteRoute(ctx context.Context, app, id string) error {
	_, err := c.request(ctx, http.MethodDelete, "/v1/apps/"+pathEscape(app)+"/routes/"+pathEscape(id), "", nil)
	return err
}

// Certs lists every TLS domain's certificate state.
func (c *Client) Certs(ctx context.Context) ([]api.CertView, []byte, error) {
	var out api.CertsView
	raw, err := c.getJSON(ctx, "/v1/certs", &out)
	return out.Certs, raw, err
}

// Status returns the last render report of every NGINX node.
func (c *Client) Status(ctx context.Context) (api.StatusView, []byte, error) {
	var out api.StatusView
	raw, err := c.getJSON(ctx, "/v1/status", &out)
	return out, raw, err
}

// Rollout returns which NGINX nodes serve an app's current revision.
func (c *Client) Rollout(ctx context.Context, app string) (api.RolloutView, []byte, error) {
	var out api.RolloutView
	raw, err := c.getJSON(ctx, "/v1/apps/"+pathEscape(app)+"/rollout", &out)
	return out, raw, err
}

// Events returns the recent events matching the query (app, subject,
// limit).
func (c *Client) Events(ctx context.Context, q url.Values) ([]feed.EventRecord, []byte, error) {
	var out api.EventsView
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	raw, err := c.getJSON(ctx, path, &out)
	return out.Events, raw, err
}

// NodeConfig returns the config files NGINX node runs, as text.
func (c *Client) NodeConfig(ctx context.Context, node string) ([]byte, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/nodes/"+pathEscape(node)+"/config", "", nil)
	return resp.Body, err
}
