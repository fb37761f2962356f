package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/willibrandon/mtlog-audit/vfs"
)

// The state of the mirror copies is package vfs's, which keeps them; these
// aliases keep it in the one package users import.
type (
	// MirrorStatus is the state of one mirror copy (see Sink.Mirrors).
	MirrorStatus = vfs.MirrorStatus
	// MirrorState says whether a mirror copy is still written.
	MirrorState = vfs.MirrorState
)

// The states of a mirror copy (see vfs.MirrorCurrent and vfs.MirrorStale).
const (
	MirrorCurrent = vfs.MirrorCurrent
	MirrorStale   = vfs.MirrorStale
)

// ErrMirrorStale is matched by the *MirrorStaleError that the failure
// handler gets (with a nil event) when a mirror copy of the log failed or
// missed its deadline under WithRedundancyQuorum and is no longer written.
var ErrMirrorStale = errors.New("audit: a mirror copy of the log is stale")

// MirrorStaleError reports a mirror copy that WithRedundancyQuorum left
// behind: it failed an operation or did not answer within the timeout per
// copy, and is no longer written until the log is next opened, when New
// repairs it. It is given, with a nil event, to the failure handler, once
// per copy; it matches ErrMirrorStale, and errors.Is and errors.As see its
// cause (vfs.ErrMirrorTimeout for a deadline missed, or the copy's error,
// such as syscall.EIO).
type MirrorStaleError struct {
	Dir   string    // the mirror's directory
	Since time.Time // when it went stale
	Err   error     // why, naming the copy and the operation
}

// Error says which copy went stale, when and why.
func (e *MirrorStaleError) Error() string {
	return fmt.Sprintf("audit: mirror copy %s is stale since %s and no longer written (it is repaired when the log is next opened): %v",
		e.Dir, e.Since.UTC().Format(time.RFC3339Nano), e.Err)
}

// Unwrap returns the cause.
func (e *MirrorStaleError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMirrorStale) true.
func (e *MirrorStaleError) Is(target error) bool { return target == ErrMirrorStale }

// Mirrors returns the state of each mirror copy kept by WithRedundancy, in
// the order given (nil without WithRedundancy). Without
// WithRedundancyQuorum every copy is always current: an error of any copy
// is an error of the log. It is safe to call at any time, also while
// writes are blocked on a copy.
func (s *Sink) Mirrors() []MirrorStatus {
	if s.mirror == nil {
		return nil
	}
	return s.mirror.Status()
}
