// Package backends defines the interface of an off-box copy of the audit
// log: a store of immutable objects (a filesystem on another disk, an S3,
// Azure Blob or GCS bucket). The shipper in package replica uploads sealed
// segments and signed checkpoints through it, and restore and anchoring
// read them back.
//
// Each driver lives in a sub-package of its own (backends/fs, backends/s3,
// backends/azure, backends/gcs), so that a program pulls in only the SDKs
// of the drivers it imports. Every driver passes the conformance suite in
// backends/backendtest against a real server.
//
// A Backend is trusted for nothing: whatever it returns is checked against
// the SHA-256 the object's name carries and, for the log's content, against
// the signed checkpoints (docs/replication.md).
package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Backend is a store of immutable objects addressed by key. Implementations
// are safe for concurrent use.
type Backend interface {
	// Name describes the backend without secrets, for errors, health and
	// metric labels: "s3://bucket/prefix", "file:///mnt/audit".
	Name() string

	// Put stores the first size bytes of body as the object key if, and
	// only if, no object of that name exists. opts.SHA256 is the SHA-256 of
	// those bytes: the driver refuses bytes that do not match it
	// (ErrChecksum), checking them itself or having the service check what
	// it received. An object is never stored with other content, and never
	// half-written: a reader sees all of it or none. When key exists, Put
	// returns an error matching ErrExists and leaves the object as it was;
	// the caller compares with Get or Stat. opts.Retention, when set, is
	// applied with the write where the service can (S3 Object Lock
	// headers), otherwise right after it; a driver that cannot apply it
	// returns an error matching ErrUnsupported.
	//
	// Put reads body with ReadAt, in pieces and possibly more than once (to
	// hash it before sending, to send it again after a failed attempt), so
	// that an object of any size is streamed, never held in memory whole.
	// body must not change until Put returns; ReaderAt wraps a byte slice.
	Put(ctx context.Context, key string, body io.ReaderAt, size int64, opts PutOptions) error

	// Get returns the content of the object key, or an error matching
	// ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)

	// Stat returns what the service reports of the object key, or an error
	// matching ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// List returns the objects whose keys begin with prefix, in increasing
	// key order ("" lists every object).
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// SetRetention sets the legal hold of the object key to r.LegalHold
	// and, when r.Mode is not RetentionNone, sets or extends its retention
	// to r.Mode until r.Until (a zero Mode leaves the retention as it is).
	// It returns an error matching
	// ErrUnsupported when the service has no such feature (Capabilities
	// tells in advance) and the service's refusal when r would shorten a
	// compliance-mode retention.
	SetRetention(ctx context.Context, key string, r Retention) error

	// Capabilities says what the backend enforces.
	Capabilities() Capabilities

	// Close releases the backend's resources.
	Close() error
}

// PutOptions are the options of Backend.Put.
type PutOptions struct {
	// SHA256 is the SHA-256 of the data (required).
	SHA256 [32]byte
	// Retention, if not zero, is applied to the new object.
	Retention Retention
}

// RetentionMode is the strength of an object's retention.
type RetentionMode uint8

// The retention modes. In governance mode a privileged principal can still
// shorten or remove the retention; in compliance mode nobody can until it
// expires (S3 Object Lock semantics; Azure's locked immutability policy and
// GCS's locked retention policy are the compliance mode of those services).
const (
	RetentionNone RetentionMode = iota
	RetentionGovernance
	RetentionCompliance
)

// String returns "none", "governance" or "compliance".
func (m RetentionMode) String() string {
	switch m {
	case RetentionNone:
		return "none"
	case RetentionGovernance:
		return "governance"
	case RetentionCompliance:
		return "compliance"
	}
	return fmt.Sprintf("RetentionMode(%d)", uint8(m))
}

// Retention is an object's retention and legal hold.
type Retention struct {
	// Mode is the retention mode; RetentionNone with a zero Until means no
	// retention.
	Mode RetentionMode
	// Until is when the retention ends.
	Until time.Time
	// LegalHold, when true, keeps the object until the hold is cleared,
	// whatever Until says.
	LegalHold bool
}

// IsZero reports whether r asks for nothing.
func (r Retention) IsZero() bool { return r.Mode == RetentionNone && r.Until.IsZero() && !r.LegalHold }

// ObjectInfo is what a backend reports of one object.
type ObjectInfo struct {
	// Key is the object's name.
	Key string
	// Size is its length in bytes.
	Size int64
	// SHA256 is its SHA-256 as the service stored it, or nil when the
	// service does not report one (List often does not).
	SHA256 []byte
	// Modified is when the service stored it (zero if not reported).
	Modified time.Time
	// Retention is its retention as reported (zero if none or not
	// reported).
	Retention Retention
}

// Capabilities says which features a backend enforces.
type Capabilities struct {
	// Retention: Put with a retention and SetRetention make the object
	// undeletable and unchangeable until the retention ends.
	Retention bool
	// LegalHold: SetRetention can set and clear a legal hold.
	LegalHold bool
	// ServerChecksum: the service itself verifies the checksum of what it
	// receives (not only the driver before sending).
	ServerChecksum bool
}

// Errors that drivers' errors match (errors.Is).
var (
	// ErrExists: Put found an object of that name.
	ErrExists = errors.New("backends: object already exists")
	// ErrNotFound: no object of that name.
	ErrNotFound = errors.New("backends: object not found")
	// ErrChecksum: the data does not match the checksum given or stored.
	ErrChecksum = errors.New("backends: checksum mismatch")
	// ErrUnsupported: the backend has no such feature.
	ErrUnsupported = errors.New("backends: not supported by this backend")
	// ErrInvalidKey: the key is not a valid object name (see CheckKey).
	ErrInvalidKey = errors.New("backends: invalid object key")
)

// MaxKeyLen is the longest object key CheckKey accepts.
const MaxKeyLen = 512

// CheckKey reports whether key is a valid object name: 1 to MaxKeyLen bytes
// of ASCII letters, digits, '.', '-', '_' and '/', not beginning or ending
// with '/', with no empty, "." or ".." path element. Every driver refuses
// other keys with an error matching ErrInvalidKey, so that no key can name
// a file outside a filesystem backend's directory.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %q: use 1 to %d bytes", ErrInvalidKey, key, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == '/') {
			return fmt.Errorf("%w: %q: byte %d (%q) is not a letter, digit, '.', '-', '_' or '/'", ErrInvalidKey, key, i, c)
		}
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("%w: %q: empty, \".\" or \"..\" path element", ErrInvalidKey, key)
		}
	}
	return nil
}
