package cli

import "errors"

// Exit codes, documented in docs/cli.md.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitSpooled  = 3
	ExitRejected = 4
	ExitFailed   = 5
)

// exitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// WithCode makes err end the program with code.
func WithCode(code int, err error) error { return &exitError{code: code, err: err} }

// ExitCode is the code err ends the program with: the one WithCode gave it,
// else ExitFailure.
func ExitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitFailure
}
