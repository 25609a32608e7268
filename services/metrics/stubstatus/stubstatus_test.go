package stubstatus

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		page string
		want Status
		bad  bool
	}{
		{"nginx 1.22", "Active connections: 2 \nserver accepts handled requests\n 10 9 25 \nReading: 0 Writing: 1 Waiting: 1 \n",
			Status{Active: 2, Accepted: 10, Handled: 9, Requests: 25, Writing: 1, Waiting: 1}, false},
		{"html", "<html>404</html>", Status{}, true},
		{"missing line", "Active connections: 2\nserver accepts handled requests\n 10 9 25\n", Status{}, true},
		{"negative", "Active connections: -2\nserver accepts handled requests\n 10 9 25\nReading: 0 Writing: 1 Waiting: 1\n", Status{}, true},
		{"too few totals", "Active connections: 2\nserver accepts handled requests\n 10 9\nReading: 0 Writing: 1 Waiting: 1\n", Status{}, true},
		{"wrong label", "Active connections: 2\nserver accepts handled requests\n 10 9 25\nReading: 0 Sending: 1 Waiting: 1\n", Status{}, true},
		{"huge", strings.Repeat("Active connections: 2\n", 10000), Status{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.page))
			if tt.bad {
				if err == nil {
					t.Fatalf("Parse accepted %q: %+v", tt.page, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
