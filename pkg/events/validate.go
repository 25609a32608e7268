package events

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError names one invalid field by its JSON path and says why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists every invalid field of a value.
type ValidationError []FieldError

func (v ValidationError) Error() string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// fields collects FieldErrors under a path prefix.
type fields struct {
	errs ValidationError
}

func (f *fields) add(path, format string, args ...any) {
	f.errs = append(f.errs, FieldError{Field: path, Reason: fmt.Sprintf(format, args...)})
}

func (f *fields) check(path string, err error) {
	if err != nil {
		f.add(path, "%s", err.Error())
	}
}

func (f *fields) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs
}

// The grammar of every value that can reach NGINX syntax or a NATS subject.
// Each is anchored and excludes quotes, backslashes, '$', ';', braces and
// whitespace except where a single inner space is harmless.
var (
	nameRE       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$`)
	domainRE     = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	sizeRE       = regexp.MustCompile(`^[0-9]{1,6}[kKmMgG]?$`)
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	// headerValueRE: printable ASCII without " ' \ $ ; { } and without
	// leading or trailing space.
	headerValueRE = regexp.MustCompile("^([!#%&()*+,./0-9:<=>?@A-Z\\[\\]^_`a-z|~-]([ !#%&()*+,./0-9:<=>?@A-Z\\[\\]^_`a-z|~-]{0,510}[!#%&()*+,./0-9:<=>?@A-Z\\[\\]^_`a-z|~-])?)?$")
	cookieNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	probePathRE   = regexp.MustCompile(`^/[A-Za-z0-9._~%/?=&+-]{0,1000}$`)
	instanceIDRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,126}[A-Za-z0-9])?$`)
)

// CheckName checks an app or node name: a lowercase DNS label. Names are
// used as NATS subject tokens, KV keys, file names and NGINX identifiers.
func CheckName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
	}
	return nil
}

// CheckDomain checks a host name for server_name: lowercase DNS labels
// separated by dots, at most 253 characters, optionally starting with "*.".
func CheckDomain(s string) error {
	if len(s) > 253 || !domainRE.MatchString(s) {
		return fmt.Errorf("must be a lowercase DNS name (labels of letters, digits and '-', separated by '.'), optionally starting with '*.'")
	}
	return nil
}

// CheckHostPort checks "host:port" where host is an IP address (IPv6 in
// brackets) or a lowercase DNS name, such as an internal service name.
func CheckHostPort(s string) error {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port")
	}
	p, err := strconv.Atoi(port)
	if err != nil || CheckPort(p) != nil || strings.HasPrefix(host, "*") || CheckDomain(host) != nil {
		return fmt.Errorf("must be host:port with an IP address or a lowercase DNS name and a port 1-65535")
	}
	return nil
}

// CheckPort checks a TCP port number.
func CheckPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("must be between 1 and 65535")
	}
	return nil
}

// CheckSize checks an NGINX size such as 10m: up to six digits and an
// optional k, m or g suffix.
func CheckSize(s string) error {
	if !sizeRE.MatchString(s) {
		return fmt.Errorf("must be up to six digits with an optional k, m or g suffix, e.g. 10m")
	}
	return nil
}

// CheckHeaderName checks an HTTP header name: letters, digits and '-'.
func CheckHeaderName(s string) error {
	if !headerNameRE.MatchString(s) {
		return fmt.Errorf("must be 1-64 letters, digits or '-', starting with a letter or digit")
	}
	return nil
}

// CheckHeaderValue checks an HTTP header value: at most 512 printable ASCII
// characters without quotes, backslash, '$', ';' or braces, and without
// leading or trailing space.
func CheckHeaderValue(s string) error {
	if !headerValueRE.MatchString(s) {
		return fmt.Errorf("must be at most 512 printable ASCII characters without quotes, '\\', '$', ';', '{' or '}', and no leading or trailing space")
	}
	return nil
}

// CheckHashKey checks the key of the hash method: request_uri, remote_addr,
// header:<Header-Name> or cookie:<name>.
func CheckHashKey(s string) error {
	switch {
	case s == "request_uri" || s == "remote_addr":
		return nil
	case strings.HasPrefix(s, "header:"):
		return CheckHeaderName(strings.TrimPrefix(s, "header:"))
	case strings.HasPrefix(s, "cookie:"):
		if !cookieNameRE.MatchString(strings.TrimPrefix(s, "cookie:")) {
			return fmt.Errorf("cookie name must be 1-64 letters, digits, '_' or '-'")
		}
		return nil
	}
	return fmt.Errorf("must be request_uri, remote_addr, header:<Header-Name> or cookie:<name>")
}

// CheckInstanceID checks an instance id: letters, digits, '.', '_', ':' or
// '-', at most 128 characters, starting and ending with a letter or digit.
func CheckInstanceID(s string) error {
	if !instanceIDRE.MatchString(s) {
		return fmt.Errorf("must be 1-128 letters, digits, '.', '_', ':' or '-', starting and ending with a letter or digit")
	}
	return nil
}

// CheckIP checks an IPv4 or IPv6 address without zone.
func CheckIP(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return fmt.Errorf("must be an IPv4 or IPv6 address")
	}
	return nil
}

var lbMethods = map[string]bool{
	"": true, LBRoundRobin: true, LBLeastConn: true, LBIPHash: true,
	LBHash: true, LBRandomTwoLeastConn: true, LBAuto: true,
}

// Validate checks every field of the app against the grammar and returns a
// ValidationError listing each bad field by its path in the app spec.
func (a App) Validate() error {
	var f fields
	a.validate(&f, "")
	return f.err()
}

func (a App) validate(f *fields, p string) {
	f.check(p+"metadata.name", CheckName(a.Metadata.Name))
	for k, v := range a.Metadata.Labels {
		if !labelKeyRE.MatchString(k) {
			f.add(p+"metadata.labels."+safePath(k), "label key must be 1-63 letters, digits, '_', '.', '/' or '-'")
		} else if !labelValueRE.MatchString(v) {
			f.add(p+"metadata.labels."+k, "label value must be at most 63 letters, digits, '_', '.' or '-'")
		}
	}
	if a.HealthCheck != nil {
		a.HealthCheck.validate(f, p+"healthCheck")
	}
	a.Spec.validate(f, p+"spec")
}

func (s AppSpec) validate(f *fields, p string) {
	s.validateTraffic(f, p)
	s.validateRules(f, p)
	n := s.Networking
	if n.ExternalPort != 0 {
		f.check(p+".networking.external_port", CheckPort(n.ExternalPort))
	}
	if n.Domain != "" {
		f.check(p+".networking.domain", CheckDomain(n.Domain))
	}
	if (n.SSL.HSTS || n.SSL.RedirectHTTP) && !n.SSL.Enabled {
		f.add(p+".networking.ssl.enabled", "must be true with hsts or redirect_http")
	}
	if n.SSL.RedirectHTTP && n.ExternalPort == 80 {
		f.add(p+".networking.ssl.redirect_http", "needs an external_port other than 80 (the redirect listens on 80)")
	}
	if n.SSL.Enabled && n.Domain == "" {
		f.add(p+".networking.ssl.enabled", "needs spec.networking.domain")
	}
	validateRequestSettings(f, p+".networking", n.MaxBodySize, n.Timeout, n.Headers)
	if !lbMethods[s.LBMethod] {
		f.add(p+".lb_method", "must be one of round_robin, least_conn, ip_hash, hash, random_two_least_conn, auto")
	}
	switch {
	case s.LBMethod == LBHash && s.HashKey == "":
		f.add(p+".hash_key", "is required when lb_method is hash")
	case s.HashKey != "" && s.LBMethod != LBHash && !s.cookieAffinity():
		f.add(p+".hash_key", "is only used when lb_method is hash, or as cookie:<name> with session_affinity")
	case s.HashKey != "":
		f.check(p+".hash_key", CheckHashKey(s.HashKey))
	}
}

// validate checks a request rate limit at p.
func (l RateLimit) validate(f *fields, p string) {
	if l.RequestsPerSecond < 1 || l.RequestsPerSecond > 100000 {
		f.add(p+".requests_per_second", "must be between 1 and 100000")
	}
	if l.Burst < 0 || l.Burst > 100000 {
		f.add(p+".burst", "must be between 0 and 100000")
	}
}

// validateRequestSettings checks the body size, upstream timeout and
// response headers an app (at p = spec.networking) or a rule sets.
func validateRequestSettings(f *fields, p, maxBodySize string, timeout float64, headers map[string]string) {
	if maxBodySize != "" {
		f.check(p+".max_body_size", CheckSize(maxBodySize))
	}
	if timeout < 0 || timeout > 3600 {
		f.add(p+".timeout", "must be between 0 and 3600 seconds")
	}
	if len(headers) > 64 {
		f.add(p+".headers", "at most 64 headers")
	}
	for k, v := range headers {
		if err := CheckHeaderName(k); err != nil {
			f.add(p+".headers."+safePath(k), "header name %s", err)
		} else {
			f.check(p+".headers."+k, CheckHeaderValue(v))
		}
	}
}

// cookieAffinity reports whether the spec asks for session affinity by a
// cookie: session_affinity with hash_key cookie:<name>, and a method that
// session affinity decides (empty, round_robin or auto).
func (s AppSpec) cookieAffinity() bool {
	switch s.LBMethod {
	case "", LBRoundRobin, LBAuto:
		return s.SessionAffinity && strings.HasPrefix(s.HashKey, "cookie:")
	}
	return false
}

var probeMethods = map[string]bool{"": true, "GET": true, "HEAD": true, "POST": true, "OPTIONS": true}

// validateTraffic checks the retry and limit settings of an app spec.
func (s AppSpec) validateTraffic(f *fields, p string) {
	if r := s.Retries; r != nil {
		seen := map[string]bool{}
		for i, c := range r.Conditions {
			field := fmt.Sprintf("%s.retries.conditions[%d]", p, i)
			switch {
			case !slices.Contains(RetryConditions, c):
				f.add(field, "must be one of %s", strings.Join(RetryConditions, ", "))
			case seen[c]:
				f.add(field, "is listed twice")
			case c == "off" && len(r.Conditions) > 1:
				f.add(field, "off cannot be combined with other conditions")
			}
			seen[c] = true
		}
		if r.Tries < 0 || r.Tries > 100 {
			f.add(p+".retries.tries", "must be between 0 (each instance once) and 100")
		}
		if r.Timeout < 0 || r.Timeout > 3600 {
			f.add(p+".retries.timeout", "must be between 0 and 3600 seconds")
		}
	}
	if l := s.RateLimit; l != nil {
		l.validate(f, p+".rate_limit")
	}
	if s.MaxConns < 0 || s.MaxConns > 100000 {
		f.add(p+".max_conns", "must be between 0 (no cap) and 100000")
	}
	if s.ConnLimit < 0 || s.ConnLimit > 100000 {
		f.add(p+".conn_limit", "must be between 0 (no limit) and 100000")
	}
}

func (h HealthCheck) validate(f *fields, p string) {
	switch h.Protocol {
	case "", "HTTP", "TCP":
	default:
		f.add(p+".protocol", "must be HTTP or TCP")
	}
	if h.Path != "" && !probePathRE.MatchString(h.Path) {
		f.add(p+".path", "must start with '/' and hold only URL path and query characters")
	}
	if h.Port != 0 {
		f.check(p+".port", CheckPort(h.Port))
	}
	if !probeMethods[h.Method] {
		f.add(p+".method", "must be GET, HEAD, POST or OPTIONS")
	}
	for i, hd := range h.Headers {
		f.check(fmt.Sprintf("%s.headers[%d].name", p, i), CheckHeaderName(hd.Name))
		f.check(fmt.Sprintf("%s.headers[%d].value", p, i), CheckHeaderValue(hd.Value))
	}
	for i, c := range h.ExpectedStatusCodes {
		if c < 100 || c > 599 {
			f.add(fmt.Sprintf("%s.expectedStatusCodes[%d]", p, i), "must be an HTTP status between 100 and 599")
		}
	}
	if h.ExpectedBody != "" {
		switch {
		case h.Protocol == "TCP":
			f.add(p+".expectedBody", "is only used with protocol HTTP")
		case len(h.ExpectedBody) > 256 || !utf8.ValidString(h.ExpectedBody):
			f.add(p+".expectedBody", "must be at most 256 bytes of UTF-8")
		}
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"initialDelaySeconds", h.InitialDelaySeconds}, {"periodSeconds", h.PeriodSeconds}, {"timeoutSeconds", h.TimeoutSeconds}} {
		if s.v < 0 || s.v > 3600 {
			f.add(p+"."+s.name, "must be between 0 and 3600 seconds")
		}
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"failureThreshold", h.FailureThreshold}, {"successThreshold", h.SuccessThreshold}} {
		if t.v < 0 || t.v > 100 {
			f.add(p+"."+t.name, "must be between 1 and 100")
		}
	}
}

// Validate checks every field of the instance.
func (in Instance) Validate() error {
	var f fields
	in.validate(&f, "")
	return f.err()
}

func (in Instance) validate(f *fields, p string) {
	f.check(p+"id", CheckInstanceID(in.ID))
	f.check(p+"ip", CheckIP(in.IP))
	f.check(p+"port", CheckPort(in.Port))
	if in.Weight < 0 || in.Weight > 1000 {
		f.add(p+"weight", "must be between 1 and 1000")
	}
	if in.CPUPercent < 0 || in.CPUPercent > 100 {
		f.add(p+"cpu_percent", "must be between 0 and 100")
	}
	if in.MemoryPercent < 0 || in.MemoryPercent > 100 {
		f.add(p+"memory_percent", "must be between 0 and 100")
	}
	if in.LoadBand < 0 || in.LoadBand > MaxLoadBand {
		f.add(p+"load_band", "must be between 0 (no report) and %d", MaxLoadBand)
	}
}

// MaxLoadBand is the most loaded band of Instance.LoadBand.
const MaxLoadBand = 4

// safePath shortens and defuses a user-chosen key before it is echoed in an
// error path.
func safePath(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return fmt.Sprintf("%q", k)
}
