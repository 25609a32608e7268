package events_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

// subjectMatches reports whether NATS subject filter pattern matches
// subject ('*' one token, '>' one or more remaining tokens).
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// mayPublish reports whether permissions p let their holder publish on
// subject.
func mayPublish(p events.Permissions, subject string) bool {
	allowed := slices.ContainsFunc(p.Publish, func(pat string) bool { return subjectMatches(pat, subject) })
	denied := slices.ContainsFunc(p.PublishDeny, func(pat string) bool { return subjectMatches(pat, subject) })
	return allowed && !denied
}

// sampleSubject is a subject of family wildcard w, about app "shop" (or
// its domain).
func sampleSubject(w string) string {
	switch {
	case w == events.RejectedWildcard:
		return events.Rejected(events.InstanceRegistered("shop"))
	case strings.HasSuffix(w, ".>"):
		return strings.TrimSuffix(w, ">") + "shop.example.com"
	}
	return strings.TrimSuffix(w, "*") + "shop"
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.>", "a.b.c", true}, {"a.>", "a", false},
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {"$KV.apps.>", "$KV.apps.shop", true},
	} {
		if got := subjectMatches(c.pattern, c.subject); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v", c.pattern, c.subject, got)
		}
	}
}

// TestCatalogueMatchesPermissions holds the catalogue to the contract:
// every event type has a family with a stream; exactly its publishers'
// permissions allow publishing it; every consumer may create a consumer on
// its stream; every bucket's writers, and only they, may write it.
func TestCatalogueMatchesPermissions(t *testing.T) {
	perms := map[string]events.Permissions{}
	for _, id := range events.Services() {
		p, err := events.PermissionsOf(id)
		if err != nil {
			t.Fatal(err)
		}
		perms[id] = p
	}
	fams := events.Catalogue()
	seen := map[string]bool{}
	for _, f := range fams {
		seen[f.Type] = true
		if f.Subject == "" || f.Stream == "" || f.About == "" || f.Payload == "" {
			t.Errorf("%s: incomplete %+v", f.Type, f)
			continue
		}
		if !strings.HasPrefix(f.Type, "io.orchestry.") || !strings.HasPrefix(f.Subject, strings.TrimSuffix(strings.TrimPrefix(f.Type, "io.orchestry."), ".v1")+".") {
			t.Errorf("%s: on subject %s", f.Type, f.Subject)
		}
		if len(f.Publishers) == 0 {
			t.Errorf("%s: nobody may publish it", f.Subject)
		}
		subject := sampleSubject(f.Subject)
		for _, id := range events.Services() {
			if got, want := mayPublish(perms[id], subject), slices.Contains(f.Publishers, id); got != want {
				t.Errorf("%s may publish %s: %v, catalogue says %v", id, subject, got, want)
			}
		}
		for _, c := range f.Consumers {
			if _, ok := perms[c.Service]; !ok || c.Use == "" {
				t.Errorf("%s: consumer %+v", f.Subject, c)
				continue
			}
			if api := "$JS.API.CONSUMER.CREATE." + f.Stream; !mayPublish(perms[c.Service], api) {
				t.Errorf("%s consumes %s but may not ask %s", c.Service, f.Subject, api)
			}
		}
	}
	for _, typ := range []string{"io.orchestry.routing.changed.v1", "io.orchestry.instance.registered.v1", "io.orchestry.rejected.v1"} {
		if !seen[typ] {
			t.Errorf("no family of %s", typ)
		}
	}
	for _, r := range events.Requests() {
		if len(r.Requesters) == 0 || len(r.Responders) == 0 || r.Answer == "" {
			t.Errorf("request %s: incomplete %+v", r.Subject, r)
		}
		subject := sampleSubject(r.Subject)
		for _, id := range events.Services() {
			if got, want := mayPublish(perms[id], subject), slices.Contains(r.Requesters, id); got != want {
				t.Errorf("%s may ask %s: %v, catalogue says %v", id, subject, got, want)
			}
			serves := slices.ContainsFunc(perms[id].Subscribe, func(p string) bool { return subjectMatches(p, subject) })
			if want := slices.Contains(r.Responders, id); serves != want || perms[id].AllowResponses != want {
				t.Errorf("%s answers %s: %v, catalogue says %v", id, subject, serves, want)
			}
		}
	}
	for _, b := range events.BucketCatalogue() {
		if b.Key == "" || len(b.Writers) == 0 {
			t.Errorf("bucket %s: incomplete %+v", b.Name, b)
		}
		for _, id := range events.Services() {
			if got, want := mayPublish(perms[id], "$KV."+b.Name+".k"), slices.Contains(b.Writers, id); got != want {
				t.Errorf("%s may write bucket %s: %v, catalogue says %v", id, b.Name, got, want)
			}
			reads := slices.Contains(b.Writers, id) || slices.Contains(b.Readers, id)
			if b.Secret && mayPublish(perms[id], "$JS.API.STREAM.INFO.KV_"+b.Name) != reads {
				t.Errorf("%s may read secret bucket %s: %v, catalogue says %v", id, b.Name, !reads, reads)
			}
		}
	}
}
