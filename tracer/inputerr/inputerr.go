// Package inputerr marks errors caused by what the user asked for (bad sizes,
// unknown interfaces, missing privileges, unreadable files) as opposed to
// failures of the kernel or of ringtrace itself. The CLI prints them as one
// line and exits with status 2.
package inputerr

import (
	"errors"
	"fmt"
)

// ErrNotPermitted is wrapped by input errors caused by missing privileges.
var ErrNotPermitted = errors.New("operation not permitted")

// Error is a problem with the user's input.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// New formats a message like fmt.Sprintf.
func New(format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}

// Wrap marks err as an input error with a message; errors.Is(…, cause) holds.
func Wrap(cause error, format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...), err: cause}
}

// Is reports whether err is, or wraps, an input error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
