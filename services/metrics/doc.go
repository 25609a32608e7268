// Package metrics will collect per-app and per-instance traffic figures from
// NGINX, export them to Prometheus and publish metrics.upstream.<app>.
package metrics
