// Package health will run active probes and passive outlier detection for
// every registered instance and publish instance.health.<app> transitions.
// Until it lands, the renderer treats every registered instance as healthy.
package health
