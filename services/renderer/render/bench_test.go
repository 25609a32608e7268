package render

import (
	"fmt"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func BenchmarkRender(b *testing.B) {
	methods := []string{events.LBRoundRobin, events.LBLeastConn, events.LBIPHash, events.LBRandomTwoLeastConn}
	for _, n := range []int{100, 1000, 10000} {
		states := make([]events.RoutingState, n)
		for i := range states {
			insts := make([]events.Instance, 10)
			for j := range insts {
				insts[j] = events.Instance{ID: fmt.Sprintf("i%d", j), IP: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), Port: 8000 + j, Weight: j + 1}
			}
			states[i] = state(fmt.Sprintf("app-%d", i), events.AppSpec{LBMethod: methods[i%len(methods)], Networking: events.Networking{
				Domain: fmt.Sprintf("app-%d.example.com", i), Headers: map[string]string{"X-App": fmt.Sprint(i)},
			}}, insts...)
		}
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(states, testOpts()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
