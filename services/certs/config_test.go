package certs

import (
	"testing"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
)

func TestConfigDefaults(t *testing.T) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Provider != "selfsigned" || cfg.HTTP01Addr != "127.0.0.1:8402" || cfg.caFile() != ".data/certs/ca.crt" ||
		cfg.FailureBudget != 5 || cfg.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := testConfig(t, "one")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"unknown provider", func(c *Config) { c.Provider = "letsencrypt" }},
		{"retry max below base", func(c *Config) { c.RetryMax = c.RetryBase / 2 }},
		{"no concurrency", func(c *Config) { c.Concurrency = 0 }},
		{"acme without directory", func(c *Config) { c.Provider = "acme"; c.ACMEDirectory = "" }},
		{"bad replica id", func(c *Config) { c.Replica = "a.b" }},
		{"negative budget", func(c *Config) { c.FailureBudget = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			if _, err := New(&nats.Conn{}, cfg, nopLog); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
