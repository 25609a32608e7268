// Package cli is the orchestry command line: kubectl-like commands that
// drive the routing service's REST API (apply, get, describe, delete,
// instances, events, config, status), and the all-in-one's own commands
// (up, nats-config, demo), which main passes in with Passthrough.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Options are the command line's streams, environment and extra commands;
// zero fields take the process's own.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// UserConfigDir is where orchestry/config.yaml is looked for
	// (os.UserConfigDir when nil).
	UserConfigDir func() (string, error)
	// Commands are added to the root command as they are (the all-in-one's
	// up, nats-config and demo).
	Commands []*cobra.Command
}

// app is the state shared by the commands of one run.
type app struct {
	opts           Options
	env            env
	ctx            context.Context
	apiURL, token  string
	requestTimeout time.Duration
	client         *Client
}

// Main runs the command line on the process's arguments and streams, with
// Ctrl-C and SIGTERM cancelling the command, and returns the exit code.
func Main(args []string, opts Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Execute(ctx, args, opts)
}

// Execute runs the command line with args (without the program name) and
// returns the exit code (ExitOK, ExitFailed, ...). Errors are written to
// opts.Stderr.
func Execute(ctx context.Context, args []string, opts Options) int {
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	a := &app{opts: opts, env: env{getenv: opts.Getenv, userConfigDir: opts.UserConfigDir}, ctx: ctx}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(opts.Stdin)
	root.SetOut(opts.Stdout)
	root.SetErr(opts.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var re *runError
	if !errors.As(err, &re) {
		// Only cobra's own errors come back unwrapped: the command line.
		fmt.Fprintf(opts.Stderr, "Error: %v\n", err)
		if cmd != nil {
			fmt.Fprintf(opts.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return ExitUsage
	}
	code := ExitCode(re.err)
	if errors.Is(re.err, errSilent) {
		return code
	}
	fmt.Fprintf(opts.Stderr, "Error: %v\n", re.err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(opts.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// runError marks an error returned by a command's own code, as opposed to
// cobra's parsing of the command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }

func (e *runError) Unwrap() error { return e.err }

// run adapts a command's function to cobra, marking its errors.
func run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &runError{err: err}
		}
		return nil
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "orchestry",
		Short: "Orchestry: NGINX routing driven by events",
		Long: `orchestry runs Orchestry (up, nats-config, demo) and drives a running one through
the routing service's REST API: declare apps, register instances, watch the
NGINX nodes converge and follow the event stream.

` + configHelp + `

Output: tables (and -o json or -o yaml, the API's answer as it is) go to
standard output; progress, warnings and errors go to standard error.

` + exitCodesHelp,
		Example: `  orchestry up -demo                      # the all-in-one with a demo app
  orchestry apply -f app.yaml --wait      # declare an app and wait for NGINX
  orchestry get apps
  orchestry get instances shop -o wide
  orchestry describe app shop
  orchestry events tail 'instance.>'`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	pf := root.PersistentFlags()
	pf.StringVar(&a.apiURL, "api", "", "URL of the Orchestry API (default: ORCHESTRY_API_URL, the config file, "+DefaultAPIURL+")")
	pf.StringVar(&a.token, "token", "", "API bearer token (default: ORCHESTRY_API_TOKEN, the config file, .data/api-token)")
	pf.DurationVar(&a.requestTimeout, "request-timeout", 30*time.Second, "time limit of each API request")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%v", err)
	})
	root.AddGroup(&cobra.Group{ID: "apps", Title: "Apps and instances:"},
		&cobra.Group{ID: "observe", Title: "Observe:"},
		&cobra.Group{ID: "run", Title: "Run Orchestry:"})
	root.SetHelpCommandGroupID("")
	for _, c := range []*cobra.Command{a.applyCommand(), a.getCommand(), a.describeCommand(), a.deleteCommand(), a.instancesCommand()} {
		c.GroupID = "apps"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.statusCommand(), a.eventsCommand(), a.configCommand()} {
		c.GroupID = "observe"
		root.AddCommand(c)
	}
	for _, c := range a.opts.Commands {
		c.GroupID = "run"
		root.AddCommand(c)
	}
	root.AddCommand(a.versionCommand())
	return root
}

// apiClient returns the API client, resolving the connection on first use.
func (a *app) apiClient() (*Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	conn, err := a.env.resolve(a.apiURL, a.token)
	if err != nil {
		return nil, err
	}
	a.client = NewClient(conn, a.requestTimeout)
	return a.client, nil
}

// stdout and stderr are the command's streams.
func (a *app) stdout() io.Writer { return a.opts.Stdout }
func (a *app) stderr() io.Writer { return a.opts.Stderr }

// Passthrough is a command whose arguments go unparsed to run (which
// returns the exit code): the all-in-one's commands keep their own flags
// ("orchestry up -demo", "orchestry demo -listen ADDR").
func Passthrough(use, short, long string, run func(args []string) int) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		Long:               long,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := run(args); code != 0 {
				return &runError{err: &ExitError{Code: code, Err: errSilent}}
			}
			return nil
		},
	}
}

// errSilent is an error already reported by the command itself.
var errSilent = errors.New("")

// exactArgs is cobra.ExactArgs with the argument names in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s needs %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}
