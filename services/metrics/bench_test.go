package metrics

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/services/metrics/syslog"
	"github.com/orchestry/orchestry/services/metrics/window"
)

// benchLines makes n framed datagrams spread over apps × perApp addresses,
// a fifth of them with a retry, latencies of 1..200 ms.
func benchLines(n, apps, perApp int) (lines [][]byte, agg *window.Aggregator) {
	agg = window.New(perApp, time.Now())
	addr := func(a, i int) string { return fmt.Sprintf("10.%d.%d.%d:8080", a%256, i/256%256, i%256) }
	for a := range apps {
		var instances []netip.AddrPort
		for i := range perApp {
			instances = append(instances, netip.MustParseAddrPort(addr(a, i)))
		}
		agg.SetApp(fmt.Sprintf("app-%d", a), instances)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for k := range n {
		a, i := k%apps, (k/apps)%perApp
		rt := fmt.Sprintf("0.%03d", 1+rng.IntN(200))
		l := `{"v":1,"node":"node-1","app":"app-` + fmt.Sprint(a) + `","ts":"1795598063.848","status":"200","request_time":"` + rt +
			`","upstream_addr":"` + addr(a, i) + `","upstream_status":"200","upstream_connect_time":"0.000","upstream_header_time":"` + rt +
			`","upstream_response_time":"` + rt + `","bytes_sent":"1532","config_version":"7"}`
		if k%5 == 0 {
			l = `{"v":1,"node":"node-1","app":"app-` + fmt.Sprint(a) + `","ts":"1795598063.848","status":"200","request_time":"` + rt +
				`","upstream_addr":"` + addr(a, (i+1)%perApp) + `, ` + addr(a, i) + `","upstream_status":"502, 200","upstream_connect_time":"-, 0.000","upstream_header_time":"-, ` + rt +
				`","upstream_response_time":"0.000, ` + rt + `","bytes_sent":"1532","config_version":"7"}`
		}
		lines = append(lines, []byte("<190>Nov 25 09:30:00 orchestry: "+l))
	}
	return lines, agg
}

// BenchmarkIngest measures the hot path of one datagram: strip the syslog
// header, parse, count in the window, on one goroutine as the service runs
// it, so lines/s/core is what one core ingests.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct{ apps, perApp int }{{1, 10}, {100, 100}} {
		b.Run(fmt.Sprintf("%dx%d_instances", c.apps, c.perApp), func(b *testing.B) {
			lines, agg := benchLines(100000, c.apps, c.perApp)
			var counters Counters
			in := newIngest(agg, &counters, newServingVersions(), zerolog.Nop())
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				msg, _ := syslog.Strip(lines[i%len(lines)])
				in.handle(msg, nil)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s/core")
			if d := counters.Dropped(); d != 0 {
				b.Fatalf("%d lines dropped: %v", d, counters.Snapshot())
			}
		})
	}
}

// BenchmarkWindowMemory measures the heap one window holds with 10,000
// addresses (100 apps × 100), each seen with latencies spread over
// 1..200 ms, and the cost of flushing it.
func BenchmarkWindowMemory(b *testing.B) {
	const apps, perApp = 100, 100
	lines, agg := benchLines(apps*perApp*20, apps, perApp)
	var counters Counters
	in := newIngest(agg, &counters, newServingVersions(), zerolog.Nop())
	var heap, flushed float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, l := range lines {
			msg, _ := syslog.Strip(l)
			in.handle(msg, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		t := time.Now()
		out := agg.Flush(time.Now())
		flushed = float64(time.Since(t).Microseconds())
		n := 0
		for _, m := range out {
			n += len(m.Instances)
		}
		if n != apps*perApp {
			b.Fatalf("flushed %d addresses, want %d", n, apps*perApp)
		}
	}
	b.ReportMetric(heap/(1<<20), "MiB/window")
	b.ReportMetric(heap/(apps*perApp), "B/instance")
	b.ReportMetric(flushed/1000, "ms/flush")
}
