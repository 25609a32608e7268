package renderer

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
)

func TestSyslogTargetResolvesNamesAndFallsBackToAFile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"10.0.0.5:5514", "10.0.0.5:5514"},
		{"[::1]:5514", "[::1]:5514"},
		{"metrics.orchestry-test.invalid:5514", ""}, // .invalid never resolves
	} {
		s := &Service{cfg: Config{Syslog: tc.in}, log: zerolog.Nop()}
		if got := s.syslogTarget(context.Background()); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
	s := &Service{cfg: Config{Syslog: "localhost:5514"}, log: zerolog.Nop()}
	if got := s.syslogTarget(context.Background()); got != "127.0.0.1:5514" && got != "[::1]:5514" {
		t.Errorf("localhost: %q, want a loopback address", got)
	}
}
