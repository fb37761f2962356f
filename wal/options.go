package wal

import (
	"fmt"
	"os"
	"time"
)

// SyncMode says when Append may return.
type SyncMode int

const (
	// SyncDurable (the default): Append returns after its record and every
	// directory entry needed to find it have been made durable with
	// fdatasync/fsync. Nothing acknowledged is lost to a process crash,
	// an operating-system crash or a power loss.
	SyncDurable SyncMode = iota
	// SyncInterval: Append returns once the record has been written to the
	// operating system; the log calls fdatasync at most SyncInterval later.
	// A process crash (kill -9) loses nothing acknowledged; an
	// operating-system crash or power loss loses the records acknowledged
	// in the last SyncInterval (recovery truncates them as a torn tail).
	SyncInterval
	// SyncNone: Append returns once the record has been written to the
	// operating system, and the log never calls fdatasync except when it
	// seals a segment. A process crash loses nothing acknowledged; an
	// operating-system crash or power loss can lose any record acknowledged
	// since the last seal.
	SyncNone
)

// String names the mode.
func (m SyncMode) String() string {
	switch m {
	case SyncDurable:
		return "durable"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Options configure Open. The zero value is the durable default.
type Options struct {
	// SegmentSize is the size at which a segment is sealed and the next
	// one begins. Default 64 MiB.
	SegmentSize int64
	// Sync is the durability mode; SyncDurable by default.
	Sync SyncMode
	// SyncInterval is the longest time between fdatasyncs in SyncInterval
	// mode. Default 100ms.
	SyncInterval time.Duration
	// MaxBatchBytes bounds the bytes one group commit writes; appenders
	// wait for the next batch beyond it. Default 4 MiB.
	MaxBatchBytes int
	// MaxBatchRecords bounds the records one group commit writes. Default
	// 0: no bound beyond MaxBatchBytes.
	MaxBatchRecords int
	// MaxDelay is how long the committer waits for more appenders before
	// writing a batch. Default 0: write as soon as the previous sync ends
	// (batches still grow with load, because appenders queue while a sync
	// is in flight).
	MaxDelay time.Duration
	// MaxRecordSize bounds one payload. Default 16 MiB.
	MaxRecordSize int
	// Owner is written into the directory's lock file so that a second
	// process trying to open the log is told who holds it. Default: the
	// process id, host name and start time.
	Owner string
	// Now returns the time used for segment headers. Default time.Now.
	Now func() time.Time
	// OnCommit, if set, is called by the committing goroutine for every
	// batch, seal records included, in sequence order, after the batch was
	// written (and, in SyncDurable mode, synced) and before any appender is
	// acknowledged. It may set each record's Digest, which AppendAck
	// returns. The slice and the payloads it points to are valid only
	// during the call. An error puts the log into its failed state (the
	// records stay in the log; their appenders get the error).
	OnCommit func(recs []Committed) error
	// Prealloc is how far ahead of the write offset the active segment is
	// filled with zeros, by a background goroutine, so that most batches
	// overwrite blocks the filesystem already allocated and their
	// fdatasync need not also commit a new file size (on ext4 here that
	// makes an fdatasync about a third faster; see docs/performance.md).
	// Default 0: 1 MiB. Negative: off (every batch appends).
	Prealloc int64
	// PreDigest, if set, is called by each appender on its own goroutine
	// (so in parallel) with the payload; the result reaches OnCommit as
	// Committed.Pre. Use it for per-record work that needs no ordering,
	// such as hashing the payload.
	PreDigest func(payload []byte) [32]byte
	// Tag, if set, is called by the committing goroutine for every batch,
	// seal records included, in sequence order, with sequence numbers
	// assigned, BEFORE the batch is written; the 32 bytes it returns are
	// stored in the batch (docs/wal-format.md) and handed back by readers
	// on the batch's last record (Record.Tag). It may set each record's
	// Digest, which OnCommit then sees (so work done here need not be done
	// twice). If the write fails, the batch takes no sequence numbers and
	// OnCommit is not called: the next call starts at the same sequence
	// number. An error fails the log. Without Tag, batches carry no tag and
	// cost nothing more. The WAL never interprets tags: it is for layers
	// above (the audit package authenticates batches with it).
	Tag func(recs []Committed) ([32]byte, error)
	// Owned reports whether a file name in the directory belongs to a
	// layer above the WAL that keeps its files beside the segments (see
	// Owns for the WAL's own names). Open creates a log in a directory
	// without segments only when every file in it is the WAL's or Owned;
	// anything else means the directory is someone else's, and Open
	// returns ErrNotWAL. Default nil: no other layer's files.
	Owned func(name string) bool
	// OnSeal, if set, is called by the committing goroutine each time a
	// segment is sealed, after its seal is durable and was handed to
	// OnCommit (by rotation, SegmentMaxAge or Close). It runs on the
	// commit path and must not block: hand the Seal to another goroutine.
	// Layers that copy sealed segments elsewhere use it to learn of a new
	// seal without scanning the directory.
	OnSeal func(Seal)
	// SegmentMaxAge, if positive, seals the active segment once its first
	// record written since it was created or reopened is SegmentMaxAge old
	// (by the monotonic clock, not Now), so that no record stays in an
	// unsealed segment much longer than that. Default 0: segments are
	// sealed by size and on Close only.
	SegmentMaxAge time.Duration
	// OnBatch, if set, is called by the committing goroutine after each
	// group commit of appended records that was written (and synced, in
	// SyncDurable mode) and passed OnCommit, before its appenders are
	// acknowledged, with what the commit wrote and how long its fdatasync
	// took. It must not block or call back into the log. Nil (the default)
	// costs nothing: the fdatasync is then not timed.
	OnBatch func(BatchStats)
	// KeepLock makes Close leave the directory lock held, for an owner
	// that still writes files of the log after its records are closed (the
	// final checkpoint, the shipping cursor); it then calls ReleaseLock.
	KeepLock bool
}

// Seal describes a seal record that a segment ends with, or that records
// follow in a segment continued after a clean Close: the bytes [0, End) of
// the segment's file are a complete, durable segment ending in the seal
// record LastSeq.
type Seal struct {
	Segment  uint64 // the segment number
	FirstSeq uint64 // its first record
	LastSeq  uint64 // the seal record's sequence number
	End      int64  // the offset just past the seal's batch
}

// BatchStats describes one group commit for Options.OnBatch.
type BatchStats struct {
	// Records is how many appended records the commit wrote.
	Records int
	// Bytes is the size of their payloads and record headers (the batch's
	// framing, tag and padding not included).
	Bytes int
	// Synced is set when the commit called fdatasync (SyncDurable mode),
	// and Sync is how long that call took.
	Synced bool
	Sync   time.Duration
}

// Committed is a record handed to Options.OnCommit.
type Committed struct {
	Seq     uint64
	Type    RecordType
	Time    int64
	Payload []byte
	// Pre is what Options.PreDigest returned for the payload (zero
	// without it; seal records always have zero).
	Pre [32]byte
	// Digest is set by OnCommit (for instance to the record's Merkle leaf
	// hash) and returned to the appender in its Ack.
	Digest [32]byte
}

// Ack acknowledges a record.
type Ack struct {
	Seq    uint64
	Digest [32]byte // as set by Options.OnCommit; zero without it
}

func (o *Options) fill() error {
	if o.SegmentSize == 0 {
		o.SegmentSize = 64 << 20
	}
	if o.SegmentSize < 4*SectorSize {
		return fmt.Errorf("wal: segment size %d is too small: use at least %d bytes", o.SegmentSize, 4*SectorSize)
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = 16 << 20
	}
	if o.Prealloc == 0 {
		o.Prealloc = 1 << 20
	}
	if o.MaxRecordSize > maxBatchBody/2 {
		return fmt.Errorf("wal: MaxRecordSize %d is above the limit of %d bytes", o.MaxRecordSize, maxBatchBody/2)
	}
	if o.Sync < SyncDurable || o.Sync > SyncNone {
		return fmt.Errorf("wal: unknown sync mode %d", o.Sync)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SegmentMaxAge < 0 {
		return fmt.Errorf("wal: negative SegmentMaxAge %v: pass a positive age, or 0 to seal by size only", o.SegmentMaxAge)
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("pid %d on host %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	}
	return nil
}
