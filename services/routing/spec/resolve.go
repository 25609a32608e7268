package spec

import "github.com/orchestry/orchestry/pkg/events"

// DefaultPort is the external port of an app that declares none.
const DefaultPort = 80

// Resolve fills the defaults of a declared app, as published on
// routing.changed: the load-balancing method is made concrete (empty means
// round_robin; auto picks ip_hash for session affinity, a consistent hash on
// the client address for stateful apps, and least_conn otherwise; session
// affinity turns round_robin into ip_hash) and a missing external port
// becomes 80. The declared app is not modified.
func Resolve(a events.App) events.App {
	s := &a.Spec
	switch s.LBMethod {
	case "", events.LBRoundRobin:
		s.LBMethod = events.LBRoundRobin
		if s.SessionAffinity {
			s.LBMethod = events.LBIPHash
		}
	case events.LBAuto:
		switch {
		case s.SessionAffinity:
			s.LBMethod = events.LBIPHash
		case s.Stateful:
			s.LBMethod, s.HashKey = events.LBHash, "remote_addr"
		default:
			s.LBMethod = events.LBLeastConn
		}
	}
	if s.Networking.ExternalPort == 0 {
		s.Networking.ExternalPort = DefaultPort
	}
	return a
}
