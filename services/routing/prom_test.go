package routing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAPIRequestsCounted(t *testing.T) {
	m := newPromMetrics()
	h := m.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/apps" {
			http.NotFound(w, r)
		}
	}))
	for _, p := range []string{"/v1/apps", "/v1/apps", "/nope"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	for _, tc := range []struct {
		code string
		want float64
	}{{"200", 2}, {"404", 1}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("get", tc.code)); got != tc.want {
			t.Errorf("requests %s = %v, want %v", tc.code, got, tc.want)
		}
	}
}
