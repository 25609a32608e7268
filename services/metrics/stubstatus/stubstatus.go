// Package stubstatus reads NGINX's stub_status page and exports it to
// Prometheus per node: connections by state (active, reading, writing,
// waiting) as gauges, and connections accepted and handled and requests as
// counters, scraped from every node's status server when Prometheus
// scrapes.
package stubstatus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Path is where the renderer's status server serves stub_status.
const Path = "/_status"

// maxBody bounds what is read of a status page (NGINX's is ~100 bytes).
const maxBody = 4 << 10

// Status is one reading of stub_status.
type Status struct {
	Active, Reading, Writing, Waiting int64
	Accepted, Handled, Requests       int64
}

// Parse reads a stub_status page:
//
//	Active connections: 2
//	server accepts handled requests
//	 10 10 25
//	Reading: 0 Writing: 1 Waiting: 1
func Parse(r io.Reader) (Status, error) {
	var s Status
	sc := bufio.NewScanner(io.LimitReader(r, maxBody))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("stub_status: %w", err)
	}
	if len(lines) != 4 || lines[1] != "server accepts handled requests" {
		return s, errors.New("stub_status: not a stub_status page")
	}
	if err := fields(lines[0], []string{"Active", "connections:"}, &s.Active); err != nil {
		return s, err
	}
	if err := fields(lines[2], nil, &s.Accepted, &s.Handled, &s.Requests); err != nil {
		return s, err
	}
	if err := fields(lines[3], []string{"Reading:", "", "Writing:", "", "Waiting:"}, &s.Reading, &s.Writing, &s.Waiting); err != nil {
		return s, err
	}
	return s, nil
}

// fields reads the numbers of line into dst: with labels, the words of the
// line must be the labels with the numbers in the "" places (and after the
// last label); without, the line is just the numbers.
func fields(line string, labels []string, dst ...*int64) error {
	words := strings.Fields(line)
	var nums []string
	if labels == nil {
		nums = words
	} else {
		if len(words) != len(labels)+1 {
			return fmt.Errorf("stub_status: unexpected line %q", line)
		}
		for i, w := range words {
			if i < len(labels) && labels[i] != "" {
				if w != labels[i] {
					return fmt.Errorf("stub_status: unexpected line %q", line)
				}
				continue
			}
			nums = append(nums, w)
		}
	}
	if len(nums) != len(dst) {
		return fmt.Errorf("stub_status: unexpected line %q", line)
	}
	for i, n := range nums {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("stub_status: bad number %q", n)
		}
		*dst[i] = v
	}
	return nil
}

// Fetch GETs http://addr/_status and parses it.
func Fetch(ctx context.Context, client *http.Client, addr string) (Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+Path, nil)
	if err != nil {
		return Status{}, fmt.Errorf("stub_status %s: %w", addr, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("stub_status %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("stub_status %s: %s", addr, resp.Status)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", addr, err)
	}
	return s, nil
}

// Collector scrapes every node's stub_status when Prometheus collects, all
// nodes at once, each within Timeout.
type Collector struct {
	targets func() map[string]string // node -> status ip:port
	client  *http.Client
	// Timeout bounds one node's scrape.
	Timeout time.Duration

	up, conns, accepted, handled, requests *prometheus.Desc
}

// NewCollector returns a Collector of the nodes targets returns.
func NewCollector(targets func() map[string]string) *Collector {
	node := []string{"node"}
	return &Collector{
		targets:  targets,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		Timeout:  2 * time.Second,
		up:       prometheus.NewDesc("orchestry_nginx_up", "1 when the node's stub_status answered this scrape.", node, nil),
		conns:    prometheus.NewDesc("orchestry_nginx_connections", "Client connections of the node by state: active (all open), reading, writing, waiting (idle keep-alive).", []string{"node", "state"}, nil),
		accepted: prometheus.NewDesc("orchestry_nginx_connections_accepted_total", "Client connections the node accepted.", node, nil),
		handled:  prometheus.NewDesc("orchestry_nginx_connections_handled_total", "Client connections the node handled (fewer than accepted when a limit was hit).", node, nil),
		requests: prometheus.NewDesc("orchestry_nginx_http_requests_total", "Client requests the node served.", node, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.conns, c.accepted, c.handled, c.requests} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for node, addr := range c.targets() {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
			defer cancel()
			s, err := Fetch(ctx, c.client, addr)
			if err != nil {
				ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, node)
				return
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, node)
			for state, v := range map[string]int64{"active": s.Active, "reading": s.Reading, "writing": s.Writing, "waiting": s.Waiting} {
				ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(v), node, state)
			}
			ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(s.Accepted), node)
			ch <- prometheus.MustNewConstMetric(c.handled, prometheus.CounterValue, float64(s.Handled), node)
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Requests), node)
		})
	}
	wg.Wait()
}
