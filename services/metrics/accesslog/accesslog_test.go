package accesslog

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// line builds a line of the format with fields overridden by key, value
// pairs; a key "-name" (without value) removes the field.
func line(kv ...string) string {
	fields := [][2]string{
		{"v", "1"}, {"node", `"n1"`}, {"app", `"web"`}, {"ts", `"1795598063.848"`},
		{"status", `"200"`}, {"request_time", `"0.021"`},
		{"upstream_addr", `"127.0.0.1:9001"`}, {"upstream_status", `"200"`},
		{"upstream_connect_time", `"0.000"`}, {"upstream_header_time", `"0.020"`},
		{"upstream_response_time", `"0.021"`}, {"bytes_sent", `"512"`},
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i]
		if name, ok := strings.CutPrefix(k, "-"); ok {
			i-- // takes no value
			for j := range fields {
				if fields[j][0] == name {
					fields = append(fields[:j], fields[j+1:]...)
					break
				}
			}
			continue
		}
		v := kv[i+1]
		found := false
		for j := range fields {
			if fields[j][0] == k {
				fields[j][1] = v
				found = true
			}
		}
		if !found {
			fields = append(fields, [2]string{k, v})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteByte('}')
	return b.String()
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

const ms = time.Millisecond

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Record
	}{
		{
			name: "one attempt",
			line: line(),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{{Addr: ap("127.0.0.1:9001"), Status: 200, ConnectTime: 0, HeaderTime: 20 * ms, ResponseTime: 21 * ms}}},
		},
		{
			name: "config version",
			line: line("config_version", `"17"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512, ConfigVersion: 17,
				Attempts: []Attempt{{Addr: ap("127.0.0.1:9001"), Status: 200, ConnectTime: 0, HeaderTime: 20 * ms, ResponseTime: 21 * ms}}},
		},
		{
			name: "retries",
			line: line("upstream_addr", `"127.0.0.1:9001, 127.0.0.1:9002, 10.0.0.3:80"`,
				"upstream_status", `"502, 504, 200"`,
				"upstream_connect_time", `"-, -, 0.001"`,
				"upstream_header_time", `"-, -, 0.010"`,
				"upstream_response_time", `"0.000, 1.000, 0.012"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{
					{Addr: ap("127.0.0.1:9001"), Status: 502, ConnectTime: Unknown, HeaderTime: Unknown, ResponseTime: 0},
					{Addr: ap("127.0.0.1:9002"), Status: 504, ConnectTime: Unknown, HeaderTime: Unknown, ResponseTime: time.Second, Retry: true},
					{Addr: ap("10.0.0.3:80"), Status: 200, ConnectTime: ms, HeaderTime: 10 * ms, ResponseTime: 12 * ms, Retry: true},
				}},
		},
		{
			name: "internal redirect groups",
			line: line("upstream_addr", `"127.0.0.1:9001, 127.0.0.1:9002 : [::1]:9003"`,
				"upstream_status", `"502, 404 : 200"`,
				"upstream_connect_time", `"-, 0.000 : 0.000"`,
				"upstream_header_time", `"-, 0.001 : 0.002"`,
				"upstream_response_time", `"0.000, 0.001 : 0.003"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{
					{Addr: ap("127.0.0.1:9001"), Status: 502, ConnectTime: Unknown, HeaderTime: Unknown},
					{Addr: ap("127.0.0.1:9002"), Status: 404, HeaderTime: ms, ResponseTime: ms, Retry: true},
					{Addr: ap("[::1]:9003"), Status: 200, HeaderTime: 2 * ms, ResponseTime: 3 * ms},
				}},
		},
		{
			name: "no upstream (503 of an app without instances)",
			line: line("status", `"503"`, "upstream_addr", `""`, "upstream_status", `""`, "upstream_connect_time", `""`,
				"upstream_header_time", `""`, "upstream_response_time", `""`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 503, RequestTime: 21 * ms, Bytes: 512},
		},
		{
			name: "dash values",
			line: line("upstream_addr", `"-"`, "upstream_status", `"-"`, "upstream_connect_time", `"-"`,
				"upstream_header_time", `"-"`, "upstream_response_time", `"-"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512},
		},
		{
			name: "dash status and times of one attempt (client closed)",
			line: line("status", `"499"`, "upstream_status", `"-"`, "upstream_header_time", `"-"`, "upstream_response_time", `"-"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 499, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{{Addr: ap("127.0.0.1:9001"), Status: 0, ConnectTime: 0, HeaderTime: Unknown, ResponseTime: Unknown}}},
		},
		{
			name: "no server available: NGINX logs the upstream name",
			line: line("status", `"502"`, "upstream_addr", `"app_web"`, "upstream_status", `"502"`, "upstream_connect_time", `"-"`,
				"upstream_header_time", `"-"`, "upstream_response_time", `"0.000"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 502, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{{Status: 502, ConnectTime: Unknown, HeaderTime: Unknown}}},
		},
		{
			name: "IPv4-mapped IPv6 kept as logged; unknown fields ignored; whitespace",
			line: " " + line("upstream_addr", `"[::ffff:10.0.0.1]:80"`, "extra", `"x"`) + "\n",
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{{Addr: ap("[::ffff:10.0.0.1]:80"), Status: 200, HeaderTime: 20 * ms, ResponseTime: 21 * ms}}},
		},
		{
			name: "escaped but valid app name",
			line: line("app", `"w\u0065b"`),
			want: Record{Node: "n1", App: "web", Time: time.UnixMilli(1795598063848), Status: 200, RequestTime: 21 * ms, Bytes: 512,
				Attempts: []Attempt{{Addr: ap("127.0.0.1:9001"), Status: 200, HeaderTime: 20 * ms, ResponseTime: 21 * ms}}},
		},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second parse runs on reused memory
				r, err := p.Parse([]byte(tt.line))
				if err != nil {
					t.Fatalf("Parse(%s): %v", tt.line, err)
				}
				if !equal(*r, tt.want) {
					t.Fatalf("Parse(%s)\n got %+v\nwant %+v", tt.line, *r, tt.want)
				}
			}
		})
	}
}

func equal(a, b Record) bool {
	if a.Node != b.Node || a.App != b.App || !a.Time.Equal(b.Time) || a.Status != b.Status ||
		a.RequestTime != b.RequestTime || a.Bytes != b.Bytes || len(a.Attempts) != len(b.Attempts) {
		return false
	}
	for i := range a.Attempts {
		if a.Attempts[i] != b.Attempts[i] {
			return false
		}
	}
	return true
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		field string
		err   error
	}{
		{"oversized", line("pad", `"`+strings.Repeat("x", MaxLine)+`"`), "", ErrTooLong},
		{"not JSON", "GET / HTTP/1.1", "", ErrSyntax},
		{"empty", "", "", ErrSyntax},
		{"empty object", "{}", "", ErrSyntax},
		{"truncated", line()[:100], "", ErrSyntax},
		{"trailing data", line() + "{}", "", ErrSyntax},
		{"nested object", line("app", `{"a":1}`), "", ErrSyntax},
		{"array value", line("app", `["web"]`), "", ErrSyntax},
		{"control character", line("app", "\"w\x01b\""), "", ErrSyntax},
		{"bad escape", line("app", `"w\qb"`), "", ErrSyntax},
		{"duplicate field", strings.Replace(line(), `"app":"web"`, `"app":"web","app":"api"`, 1), "app", ErrSyntax},
		{"missing app", line("-app"), "app", ErrMissing},
		{"missing upstream_status", line("-upstream_status"), "upstream_status", ErrMissing},
		{"missing version", line("-v"), "v", ErrMissing},
		{"empty app", line("app", `""`), "app", ErrMissing},
		{"bad app name", line("app", `"Web;rm"`), "app", ErrInvalid},
		{"app name too long", line("app", `"`+strings.Repeat("a", 64)+`"`), "app", ErrInvalid},
		{"bad node name", line("node", `"n_1"`), "node", ErrInvalid},
		{"wrong version", line("v", "2"), "v", ErrInvalid},
		{"string version", line("v", `"1"`), "v", ErrInvalid},
		{"bad status", line("status", `"2000"`), "status", ErrInvalid},
		{"dash status", line("status", `"-"`), "status", ErrInvalid},
		{"bad ts", line("ts", `"yesterday"`), "ts", ErrInvalid},
		{"negative request_time", line("request_time", `"-1.000"`), "request_time", ErrInvalid},
		{"bad bytes", line("bytes_sent", `"1e9"`), "bytes_sent", ErrInvalid},
		{"bad upstream status", line("upstream_status", `"20x"`), "upstream_status", ErrInvalid},
		{"bad config version", line("config_version", `"v3"`), "config_version", ErrInvalid},
		{"numeric config version", line("config_version", `3`), "config_version", ErrInvalid},
		{"bad upstream time", line("upstream_response_time", `"0.0001"`), "upstream_response_time", ErrInvalid},
		{"misaligned lists", line("upstream_addr", `"127.0.0.1:1, 127.0.0.1:2"`), "upstream_status", ErrMisaligned},
		{"misaligned groups", line("upstream_addr", `"127.0.0.1:1 : 127.0.0.1:2"`, "upstream_status", `"502, 200"`,
			"upstream_connect_time", `"-, 0.000"`, "upstream_header_time", `"-, 0.000"`, "upstream_response_time", `"0.000, 0.000"`), "upstream_status", ErrMisaligned},
		{"values without address", line("upstream_addr", `""`), "upstream_status", ErrMisaligned},
		{"bad address", line("upstream_addr", `"127.0.0.1:99999"`), "upstream_addr", ErrAddress},
		{"address without port", line("upstream_addr", `"127.0.0.1"`), "upstream_addr", ErrAddress},
		{"unix socket", line("upstream_addr", `"unix:/tmp/x.sock"`), "upstream_addr", ErrAddress},
		{"unspecified address", line("upstream_addr", `"0.0.0.0:80"`), "upstream_addr", ErrAddress},
		{"zoned address", line("upstream_addr", `"[fe80::1%eth0]:80"`), "upstream_addr", ErrAddress},
		{"junk address", line("upstream_addr", `"<script>"`), "upstream_addr", ErrAddress},
		{"empty item", line("upstream_addr", `"127.0.0.1:1, "`, "upstream_status", `"502, 200"`,
			"upstream_connect_time", `"-, 0.000"`, "upstream_header_time", `"-, 0.000"`, "upstream_response_time", `"0.000, 0.000"`), "upstream_addr", ErrAddress},
	}
	p := NewParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Parse([]byte(tt.line))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tt.err) || e.Field != tt.field {
				t.Fatalf("Parse = %v; want field %q, %v", err, tt.field, tt.err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error message of %d bytes echoes the input: %.100s...", len(err.Error()), err)
			}
		})
	}
	// The parser still works after every refusal.
	if _, err := p.Parse([]byte(line())); err != nil {
		t.Fatalf("good line after hostile ones: %v", err)
	}
}

func TestParseAllocs(t *testing.T) {
	p := NewParser()
	b := []byte(line("upstream_addr", `"127.0.0.1:9001, 127.0.0.1:9002"`, "upstream_status", `"502, 200"`,
		"upstream_connect_time", `"-, 0.001"`, "upstream_header_time", `"-, 0.010"`, "upstream_response_time", `"0.000, 0.012"`))
	if _, err := p.Parse(b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Parse(b) }); n != 0 {
		t.Fatalf("Parse allocates %.1f times per line, want 0", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(line()))
	f.Add([]byte(line("upstream_addr", `"127.0.0.1:1, [::1]:2 : app_web"`, "upstream_status", `"502, 200 : 502"`)))
	f.Add([]byte(`{"v":1}`))
	p := NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := p.Parse(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if r.App == "" || r.Node == "" {
			t.Fatalf("accepted a record without app or node: %+v", r)
		}
		for _, a := range r.Attempts {
			if a.Addr.IsValid() && a.Addr.Port() == 0 {
				t.Fatalf("accepted port 0: %+v", a)
			}
		}
	})
}
