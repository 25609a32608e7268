package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/orchestry/orchestry/pkg/events"
)

// Exit codes of every command, documented in the root command's help.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitFailed: the API answered with an error, or the operation failed.
	ExitFailed = 1
	// ExitUsage: the command line was wrong (unknown command or flag,
	// missing argument, bad value).
	ExitUsage = 2
	// ExitUnreachable: the API could not be reached, or refused the token.
	ExitUnreachable = 3
	// ExitTimeout: --wait gave up before every NGINX node served the change.
	ExitTimeout = 4
	// ExitNotFound: the app, instance, route or node does not exist.
	ExitNotFound = 5
)

// exitCodesHelp is the part of the root command's help that lists the exit
// codes.
const exitCodesHelp = `Exit codes:
  0  success
  1  the API answered with an error (422 invalid fields, 409 conflict, ...) or the operation failed
  2  usage or configuration error (unknown command or flag, missing argument, bad value,
     a config file others can read)
  3  cannot reach the API, or the API refused the token
  4  timeout (apply --wait: a node did not serve the change in time)
  5  not found (app, instance, route, node)`

// ExitError is an error with the exit code the process should end with.
type ExitError struct {
	Code int
	Err  error
}

// Error is the message of the wrapped error.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *ExitError) Unwrap() error { return e.Err }

// usageErrorf is an error of the command line (exit code 2).
func usageErrorf(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// APIError is an error answer of the API: its status, and Orchestry's
// error body {"error", "code", "details"} when the answer had one.
type APIError struct {
	Method  string
	Path    string
	Status  int
	Code    string
	Message string
	Details []events.FieldError
	// TokenSource says where the refused token came from (401 and 403
	// only; empty when no token was given).
	TokenSource string
}

// Error renders the answer for a person: a 422 lists each invalid field on
// its own line.
func (e *APIError) Error() string {
	var b strings.Builder
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		if e.TokenSource == "" {
			fmt.Fprintf(&b, "the API refused the request (%s) and no token was given: pass one with --token, ORCHESTRY_API_TOKEN or the config file's token", orDefault(e.Message, http.StatusText(e.Status)))
			break
		}
		fmt.Fprintf(&b, "the API refused the token (from %s): %s", e.TokenSource, orDefault(e.Message, http.StatusText(e.Status)))
		b.WriteString("; pass the right one with --token or ORCHESTRY_API_TOKEN")
	case http.StatusUnprocessableEntity:
		b.WriteString("the API refused the request, invalid fields (422):")
		if len(e.Details) == 0 {
			b.WriteString(" " + e.Message)
		}
		for _, d := range e.Details {
			fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Reason)
		}
		return b.String()
	default:
		msg := e.Message
		if msg == "" {
			msg = e.Method + " " + e.Path
		}
		fmt.Fprintf(&b, "%s (%d %s)", msg, e.Status, http.StatusText(e.Status))
		for _, d := range e.Details {
			fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Reason)
		}
	}
	return b.String()
}

// NoEndpoint reports whether the API does not serve the path at all (an
// older routing service), as opposed to a missing app or instance.
func (e *APIError) NoEndpoint() bool {
	return e.Status == http.StatusNotFound && strings.HasPrefix(e.Message, "no such endpoint")
}

// ConnError is a request that never got an answer from the API.
type ConnError struct {
	URL string
	Err error
}

// Error names the API's URL, the reason and where to set another one.
func (e *ConnError) Error() string {
	return fmt.Sprintf("cannot reach the Orchestry API at %s: %v (set --api, ORCHESTRY_API_URL or api_url in the config file)", e.URL, e.Err)
}

// Unwrap returns the network error.
func (e *ConnError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for err (ExitOK for nil).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		return ExitUnreachable
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return ExitUnreachable
		case ae.Status == http.StatusNotFound:
			return ExitNotFound
		}
		return ExitFailed
	}
	return ExitFailed
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
