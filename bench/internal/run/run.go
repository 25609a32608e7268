// Package run holds what every scenario's command shares: the quick/full
// mode and output flags, interruption by Ctrl-C or SIGTERM, and a
// temporary directory removed on exit.
package run

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// Flags are the flags every scenario takes.
type Flags struct {
	// Mode is quick or full.
	Mode string
	// Out is the directory the JSON result is written to.
	Out string
}

// Register adds -mode and -out to the default flag set.
func Register() *Flags {
	f := &Flags{}
	flag.StringVar(&f.Mode, "mode", "quick", "quick or full: sets the defaults of the other flags")
	flag.StringVar(&f.Out, "out", "bench/results/raw", "directory for the JSON result")
	return f
}

// Quick reports whether the mode is quick; it exits on an unknown mode.
func (f *Flags) Quick() bool {
	switch f.Mode {
	case "quick":
		return true
	case "full":
		return false
	}
	fmt.Fprintf(os.Stderr, "-mode must be quick or full, not %q\n", f.Mode)
	os.Exit(2)
	return false
}

// Main runs body with a context ended by Ctrl-C or SIGTERM and a temporary
// directory removed afterwards; it exits 1 on an error.
func Main(name string, body func(ctx context.Context, dir string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	dir, err := os.MkdirTemp("", "bench-"+name)
	if err == nil {
		// NGINX workers run as an unprivileged user when started by root.
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = body(ctx, dir)
		_ = os.RemoveAll(dir)
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Logger writes errors to stderr (the services' warnings during a
// benchmark are mostly about its own shutdown).
func Logger() zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.ErrorLevel).With().Timestamp().Logger()
}
