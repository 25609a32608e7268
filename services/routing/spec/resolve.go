package spec

import (
	"strings"

	"github.com/orchestry/orchestry/pkg/events"
)

// DefaultPort is the external port of an app that declares none.
const DefaultPort = 80

// Resolve fills the defaults of a declared app, as published on
// routing.changed: the load-balancing method is made concrete (empty means
// round_robin; auto picks ip_hash, or a cookie hash when hash_key names a
// cookie, for session affinity, a consistent hash on
// the client address for stateful apps, and otherwise round_robin until
// routing chooses from the app's traffic, see ChosenFromTraffic; session
// affinity turns round_robin into the same) and a missing external port
// becomes 80. The declared app is not modified.
func Resolve(a events.App) events.App {
	s := &a.Spec
	switch s.LBMethod {
	case "", events.LBRoundRobin:
		s.LBMethod = events.LBRoundRobin
		if s.SessionAffinity {
			s.LBMethod = affinityMethod(s.HashKey)
		}
	case events.LBAuto:
		switch {
		case s.SessionAffinity:
			s.LBMethod = affinityMethod(s.HashKey)
		case s.Stateful:
			s.LBMethod, s.HashKey = events.LBHash, "remote_addr"
		default:
			s.LBMethod = events.LBRoundRobin
		}
	}
	if s.Networking.ExternalPort == 0 {
		s.Networking.ExternalPort = DefaultPort
	}
	return a
}

// affinityMethod is the method of session affinity: a consistent hash of
// the cookie hashKey names, or ip_hash.
func affinityMethod(hashKey string) string {
	if strings.HasPrefix(hashKey, "cookie:") {
		return events.LBHash
	}
	return events.LBIPHash
}

// ChosenFromTraffic reports whether the app's method is chosen from its
// traffic (an events.AutoChoice): lb_method auto without session affinity
// or stateful, which decide it on their own.
func ChosenFromTraffic(a events.App) bool {
	return a.Spec.LBMethod == events.LBAuto && !a.Spec.SessionAffinity && !a.Spec.Stateful
}
