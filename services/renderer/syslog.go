package renderer

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// syslogTarget is where NGINX sends its access log in the next render:
// cfg.Syslog, its host name resolved now. NGINX resolves a name only when
// it loads a config, and a name that does not resolve then (the metrics
// service restarting, say) fails `nginx -t` and holds every app's change;
// resolved here, a failure costs only log lines: the render goes on with a
// local log file and says so.
func (s *Service) syslogTarget(ctx context.Context) string {
	addr := s.cfg.Syslog
	if addr == "" {
		return ""
	}
	if _, err := netip.ParseAddrPort(addr); err == nil {
		return addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // render.Options.Validate names the problem
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		s.log.Warn().Err(err).Str("syslog", addr).Msg("syslog host does not resolve: this config logs to a local file")
		return ""
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port)
}
