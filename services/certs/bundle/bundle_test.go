package bundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func pair(t *testing.T, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0xabc), Subject: pkix.Name{CommonName: "Test CA"},
		DNSNames: names, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func TestMake(t *testing.T) {
	cert, key := pair(t, "shop.example.com")
	_, otherKey := pair(t, "shop.example.com")
	now := time.Now()
	for _, tc := range []struct {
		name    string
		domain  string
		cert    []byte
		key     []byte
		wantErr string
	}{
		{"good", "shop.example.com", cert, key, ""},
		{"other domain", "api.example.com", cert, key, "not api.example.com"},
		{"key of another certificate", "shop.example.com", cert, otherKey, "private key does not match"},
		{"no certificate", "shop.example.com", []byte("junk"), key, "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Make(tc.domain, events.ProviderSelfSigned, tc.cert, tc.key, now.Add(time.Minute), now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatal("error carries the key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Serial != "0abc" || b.Issuer != "Test CA" || len(b.FingerprintSHA256) != 64 {
				t.Fatalf("summary %+v", b.Certificate)
			}
			for _, s := range []string{b.String(), fmt.Sprintf("%v %+v %#v", b, b, b)} {
				if strings.Contains(s, "PRIVATE KEY") {
					t.Fatalf("printed bundle carries the key: %s", s)
				}
			}
		})
	}
}
