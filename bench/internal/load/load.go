// Package load is a closed-loop HTTP load generator: a fixed number of
// workers, each sending one request after the other over a kept-alive
// connection, for a bounded time and count, recording every latency and
// every failed request.
package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one load run.
type Config struct {
	// URL is requested with GET.
	URL string
	// Workers is the number of concurrent connections.
	Workers int
	// Duration bounds the run.
	Duration time.Duration
	// MaxRequests bounds the requests of each worker (0: 10 million).
	MaxRequests int
	// Interval, when set, paces each worker to one request per interval.
	Interval time.Duration
	// Timeout bounds one request (0: 5 s).
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	// Latencies of the answered requests (at most one million are kept).
	Latencies []time.Duration
	// OK counts 200 answers; Failed everything else (errors included).
	OK, Failed int64
	// FirstErr describes the first failure, FirstErrAt when it happened.
	FirstErr   string
	FirstErrAt time.Time
	// FailedAt holds when the failures happened (the first 1,000).
	FailedAt []time.Time
	// Started is when the run started; Elapsed its wall time.
	Started time.Time
	Elapsed time.Duration
}

// maxKept bounds the latencies recorded per run.
const maxKept = 1_000_000

// Run sends load until the duration ends, ctx is done or every worker has
// sent its bound of requests.
func Run(ctx context.Context, c Config) Result {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 10_000_000
	}
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var firstAt atomic.Int64
	lats := make([][]time.Duration, c.Workers)
	var failMu sync.Mutex
	var failedAt []time.Time
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.Workers {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: c.Timeout}
			var tick *time.Ticker
			if c.Interval > 0 {
				tick = time.NewTicker(c.Interval)
				defer tick.Stop()
			}
			for range c.MaxRequests {
				if tick != nil {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := get(ctx, client, c.URL)
				d := time.Since(t0)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not a failure
				}
				if err != nil {
					failed.Add(1)
					if firstErr.CompareAndSwap(nil, err.Error()) {
						firstAt.Store(time.Now().UnixNano())
					}
					failMu.Lock()
					if len(failedAt) < 1000 {
						failedAt = append(failedAt, time.Now())
					}
					failMu.Unlock()
					continue
				}
				ok.Add(1)
				if len(lats[w]) < maxKept/c.Workers {
					lats[w] = append(lats[w], d)
				}
			}
		})
	}
	wg.Wait()
	r := Result{OK: ok.Load(), Failed: failed.Load(), Started: start, Elapsed: time.Since(start), FailedAt: failedAt}
	r.FirstErr, _ = firstErr.Load().(string)
	if n := firstAt.Load(); n != 0 {
		r.FirstErrAt = time.Unix(0, n)
	}
	for _, l := range lats {
		r.Latencies = append(r.Latencies, l...)
	}
	return r
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
