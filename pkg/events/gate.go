package events

import "sync"

// Gate remembers the highest revision applied per key and admits only newer
// ones, so a late or repeated state-bearing event never moves state back.
// It is safe for concurrent use. The zero value is ready.
type Gate struct {
	mu   sync.Mutex
	last map[string]uint64
}

// Admit reports whether rev is newer than anything admitted for key, and if
// so records it.
func (g *Gate) Admit(key string, rev uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]uint64{}
	}
	if cur, ok := g.last[key]; ok && rev <= cur {
		return false
	}
	g.last[key] = rev
	return true
}

// Last returns the highest revision admitted for key, and whether any was.
func (g *Gate) Last(key string) (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rev, ok := g.last[key]
	return rev, ok
}
