package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/orchestry/orchestry/services/routing/certview"
	"github.com/orchestry/orchestry/services/routing/spec"
)

// CertView is one domain in GET /v1/certs: the apps serving it over TLS,
// its state (certview.State*), and the summary of its last certificate
// and failure. It never holds a private key.
type CertView struct {
	Domain            string     `json:"domain"`
	Apps              []string   `json:"apps"`
	State             string     `json:"state"`
	Serial            string     `json:"serial,omitempty"`
	Issuer            string     `json:"issuer,omitempty"`
	NotBefore         *time.Time `json:"not_before,omitempty"`
	NotAfter          *time.Time `json:"not_after,omitempty"`
	FingerprintSHA256 string     `json:"fingerprint_sha256,omitempty"`
	IssuedAt          *time.Time `json:"issued_at,omitempty"`
	LastError         string     `json:"last_error,omitempty"`
	FailedAt          *time.Time `json:"failed_at,omitempty"`
	NextAttempt       *time.Time `json:"next_attempt,omitempty"`
}

// CertsView is the body of GET /v1/certs.
type CertsView struct {
	Certs []CertView `json:"certs"`
}

// listCerts lists every domain of a TLS app, and every other domain the
// certs service spoke of, sorted by domain.
func (s *server) listCerts(w http.ResponseWriter, r *http.Request) {
	all, err := s.store.List(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	apps := map[string][]string{}
	for _, e := range all {
		n := spec.Resolve(e.Record.App).Spec.Networking
		if n.SSL.Enabled && n.Domain != "" {
			apps[n.Domain] = append(apps[n.Domain], e.Record.App.Metadata.Name)
		}
	}
	var known map[string]certview.Domain
	if s.certs != nil {
		known = s.certs.Domains()
	}
	domains := make([]string, 0, len(apps)+len(known))
	for d := range apps {
		domains = append(domains, d)
	}
	for d := range known {
		if _, ok := apps[d]; !ok {
			domains = append(domains, d)
		}
	}
	slices.Sort(domains)
	now := time.Now()
	out := CertsView{Certs: make([]CertView, 0, len(domains))}
	for _, d := range domains {
		k := known[d]
		v := CertView{Domain: d, Apps: apps[d], State: k.State(now)}
		if v.Apps == nil {
			v.Apps = []string{}
		}
		slices.Sort(v.Apps)
		if c := k.Issued; c != nil {
			v.Serial, v.Issuer, v.FingerprintSHA256 = c.Serial, c.Issuer, c.FingerprintSHA256
			v.NotBefore, v.NotAfter, v.IssuedAt = &c.NotBefore, &c.NotAfter, &k.IssuedAt
		}
		if f := k.Failure; f != nil && k.FailedAt.After(k.IssuedAt) {
			v.LastError, v.FailedAt = f.Reason, &k.FailedAt
			if !f.NextAttempt.IsZero() {
				v.NextAttempt = &f.NextAttempt
			}
		}
		out.Certs = append(out.Certs, v)
	}
	writeJSON(w, http.StatusOK, out)
}
