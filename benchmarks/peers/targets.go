package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	tidwal "github.com/tidwall/wal"
	"github.com/willibrandon/mtlog"
	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog/core"
	"github.com/willibrandon/mtlog/sinks"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Guarantees, worded the same for every row that has them.
const (
	GuaranteeFdatasync = "fdatasync before ack"
	GuaranteeFsync     = "fsync before ack"
	GuaranteeBuffered  = "none: write(2) only, no sync before ack"
	GuaranteeQueued    = "none: queued in memory, may drop"
)

// IDs of the rows with a special role in the comparison.
const (
	IDAudit     = "audit"
	IDReference = "reference"
)

// All returns every row, in the order they run within a cell: the
// reference loop first and mtlog-audit right after it, so the ratio
// between them is taken minutes, not seconds, apart at worst.
func All() []Target {
	return []Target{
		{
			ID: IDReference, Name: "reference loop", Guarantee: GuaranteeFdatasync,
			Detail: "This benchmark's minimal group commit (peers.RefLoop): writers copy into one shared buffer; one flusher pwrites it, fdatasyncs, then releases that batch's writers. Raw payload bytes, no framing, no checksums, no rotation. The file's directory entry is fsynced once at creation.",
			Open:   openReference,
		},
		{
			ID: IDAudit, Name: "mtlog-audit Sink.Write", Guarantee: GuaranteeFdatasync,
			Detail: "audit.New(audit.WithWAL(dir)), default SyncDurable: Write returns after the group commit holding the event was written and fdatasynced (and, for a new segment, its directory entry fsynced). Encodes the audit.Event per call; the WAL adds framing, CRC32C, a hash chain and a Merkle tree.",
			Open:   openAuditWrite,
		},
		{
			ID: "audit-emit", Name: "mtlog-audit via mtlog Emit", Guarantee: GuaranteeFdatasync,
			Detail: "mtlog.New(mtlog.WithSink(sink)); logger.With(context properties) once per writer, then logger.Information(template, args...). The Sink's Emit is fail-closed by default: it returns only once the event is durable (as Write). Includes mtlog's event construction and message rendering.",
			Open:   openAuditEmit,
		},
		{
			ID: "etcd", Name: "etcd wal Save", Guarantee: GuaranteeFdatasync,
			Detail: "go.etcd.io/etcd/server/v3/storage/wal v3.6.16: Create, then Save(HardState{}, []Entry{one entry}) per event. Save holds the WAL's mutex and, since the entry list is not empty (raft.MustSync), flushes and fdatasyncs (fileutil.Fdatasync = fdatasync(2) on Linux) before returning; a new segment is preallocated and its directory fsynced on cut. Concurrent Saves serialize: one fdatasync per event. A mutex of this benchmark assigns consecutive raft indexes.",
			Open:   openEtcd(false),
		},
		{
			ID: "etcd-gc", Name: "etcd wal Save + benchmark group commit", Guarantee: GuaranteeFdatasync,
			Detail: "As \"etcd wal Save\", but this benchmark's group commit (not etcd's code) gathers concurrent callers into one Save of many entries: one fdatasync per batch. etcd itself batches this way in its raft loop; the WAL package does not do it for callers.",
			Open:   openEtcd(true),
		},
		{
			ID: "tidwall", Name: "tidwall/wal Write", Guarantee: GuaranteeFsync,
			Detail: "github.com/tidwall/wal v1.2.1 with NoSync false (the default): Write appends and calls File.Sync (fsync(2)) before returning. Indexes must be consecutive, so this benchmark serializes index assignment and Write under a mutex: one fsync per event. A new segment file's directory entry is not fsynced.",
			Open:   openTidwall(false),
		},
		{
			ID: "tidwall-batch", Name: "tidwall/wal WriteBatch + benchmark group commit", Guarantee: GuaranteeFsync,
			Detail: "As \"tidwall/wal Write\", but this benchmark's group commit gathers concurrent callers into one Batch and one WriteBatch: one fsync per batch.",
			Open:   openTidwall(true),
		},
		{
			ID: "raftwal", Name: "hashicorp/raft-wal StoreLogs", Guarantee: GuaranteeFsync,
			Detail: "github.com/hashicorp/raft-wal v0.4.0: StoreLogs([]*raft.Log{one log}) per event; it writes a commit frame and fsyncs the segment (File.Sync; on the first sync of a new segment also its directory) before returning. Segments are preallocated. Concurrent calls serialize: one fsync per event; a mutex of this benchmark assigns consecutive indexes.",
			Open:   openRaftWAL(false),
		},
		{
			ID: "raftwal-gc", Name: "hashicorp/raft-wal StoreLogs + benchmark group commit", Guarantee: GuaranteeFsync,
			Detail: "As \"hashicorp/raft-wal StoreLogs\", but this benchmark's group commit gathers concurrent callers into one StoreLogs of many logs: one fsync per batch.",
			Open:   openRaftWAL(true),
		},
		{
			ID: "zap", Name: "zap JSON file + Sync per entry", Guarantee: GuaranteeFsync,
			Detail: "go.uber.org/zap v1.28.0: zapcore.NewCore(JSON encoder, zapcore.Lock(*os.File), Info); each writer calls logger.Info(msg, fields...) and then logger.Sync() (os.File.Sync = fsync(2)). zapcore.Lock serializes both the write and the fsync, so every entry is fsynced before its call returns: one fsync per entry (a Sync may also cover other writers' entries). The file's directory entry is fsynced once at creation by this benchmark.",
			Open:   openZap,
		},
		{
			ID: "mtlog-file", Name: "mtlog FileSink", Guarantee: GuaranteeBuffered,
			Detail: "github.com/willibrandon/mtlog v0.10.0 sinks.NewFileSink: Emit formats the event and calls File.WriteString under a mutex; it never syncs until Close, and write errors go only to selflog. Acknowledged events are in the page cache: lost on power failure or kernel crash.",
			Open:   openMtlogFile,
		},
		{
			ID: "mtlog-durable", Name: "mtlog DurableSink(FileSink)", Guarantee: GuaranteeQueued,
			Detail: "mtlog v0.10.0 sinks.NewDurableSink wrapping a FileSink. Despite the name, Emit only puts the event on a buffered channel (10,000 slots) and returns; when the channel is full the event is dropped (counted, OnError called). A worker goroutine later delivers it to the FileSink (no fsync). Its fsynced buffer file is written only while the wrapped sink is failing, and Close stops the worker without draining the channel. So a returned Emit guarantees nothing, even against a process crash.",
			Open:   openMtlogDurable,
		},
	}
}

// Select returns the targets whose IDs are listed, in All's order, or an
// error naming an unknown ID.
func Select(ids []string) ([]Target, error) {
	all := All()
	byID := map[string]bool{}
	for _, t := range all {
		byID[t.ID] = true
	}
	want := map[string]bool{}
	for _, id := range ids {
		if !byID[id] {
			known := make([]string, 0, len(all))
			for _, t := range all {
				known = append(known, t.ID)
			}
			return nil, fmt.Errorf("peers: unknown target %q (known: %v)", id, known)
		}
		want[id] = true
	}
	var out []Target
	for _, t := range all {
		if want[t.ID] {
			out = append(out, t)
		}
	}
	return out, nil
}

// funcInstance adapts closures to Instance.
type funcInstance struct {
	writer func() func() error
	close  func() error
}

func (f funcInstance) Writer() func() error { return f.writer() }
func (f funcInstance) Close() error         { return f.close() }

func openReference(dir string, w *Workload) (Instance, error) {
	r, err := OpenRefLoop(dir)
	if err != nil {
		return nil, err
	}
	return funcInstance{
		writer: func() func() error { return func() error { return r.Append(w.Payload) } },
		close:  r.Close,
	}, nil
}

func openAuditWrite(dir string, w *Workload) (Instance, error) {
	s, err := audit.New(audit.WithWAL(dir))
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	return funcInstance{
		writer: func() func() error {
			return func() error { _, err := s.Write(ctx, w.Event); return err }
		},
		close: s.Close,
	}, nil
}

func openAuditEmit(dir string, w *Workload) (Instance, error) {
	var failure atomic.Pointer[error]
	s, err := audit.New(audit.WithWAL(dir), audit.WithFailureHandler(func(_ *core.LogEvent, err error) {
		failure.CompareAndSwap(nil, &err)
	}))
	if err != nil {
		return nil, err
	}
	logger := mtlog.New(mtlog.WithSink(s))
	return funcInstance{
		writer: func() func() error {
			l := logger.With(w.Context...)
			return func() error {
				l.Information(w.Template, w.Args...)
				if p := failure.Load(); p != nil {
					return *p
				}
				return nil
			}
		},
		close: s.Close,
	}, nil
}

// indexed serializes "take the next index, then append" for logs that need
// consecutive indexes from their callers.
type indexed struct {
	mu   sync.Mutex
	next uint64
}

func openEtcd(group bool) func(dir string, w *Workload) (Instance, error) {
	return func(dir string, w *Workload) (Instance, error) {
		l, err := etcdwal.Create(zap.NewNop(), filepath.Join(dir, "wal"), nil)
		if err != nil {
			return nil, err
		}
		ix := &indexed{next: 1}
		if !group {
			return funcInstance{
				writer: func() func() error {
					ents := make([]raftpb.Entry, 1)
					return func() error {
						ix.mu.Lock()
						defer ix.mu.Unlock()
						ents[0] = raftpb.Entry{Term: 1, Index: ix.next, Type: raftpb.EntryNormal, Data: w.Payload}
						if err := l.Save(raftpb.HardState{}, ents); err != nil {
							return err
						}
						ix.next++
						return nil
					}
				},
				close: l.Close,
			}, nil
		}
		var ents []raftpb.Entry
		gc := newGroupCommit(func(items [][]byte) error {
			ents = ents[:0]
			for i, p := range items {
				ents = append(ents, raftpb.Entry{Term: 1, Index: ix.next + uint64(i), Type: raftpb.EntryNormal, Data: p})
			}
			if err := l.Save(raftpb.HardState{}, ents); err != nil {
				return err
			}
			ix.next += uint64(len(items))
			return nil
		})
		return funcInstance{
			writer: func() func() error { return func() error { return gc.Append(w.Payload) } },
			close:  func() error { gc.Close(); return l.Close() },
		}, nil
	}
}

func openTidwall(batch bool) func(dir string, w *Workload) (Instance, error) {
	return func(dir string, w *Workload) (Instance, error) {
		opts := *tidwal.DefaultOptions
		opts.NoSync = false
		l, err := tidwal.Open(filepath.Join(dir, "wal"), &opts)
		if err != nil {
			return nil, err
		}
		ix := &indexed{next: 1}
		if !batch {
			return funcInstance{
				writer: func() func() error {
					return func() error {
						ix.mu.Lock()
						defer ix.mu.Unlock()
						if err := l.Write(ix.next, w.Payload); err != nil {
							return err
						}
						ix.next++
						return nil
					}
				},
				close: l.Close,
			}, nil
		}
		var b tidwal.Batch
		gc := newGroupCommit(func(items [][]byte) error {
			b.Clear()
			for i, p := range items {
				b.Write(ix.next+uint64(i), p)
			}
			if err := l.WriteBatch(&b); err != nil {
				return err
			}
			ix.next += uint64(len(items))
			return nil
		})
		return funcInstance{
			writer: func() func() error { return func() error { return gc.Append(w.Payload) } },
			close:  func() error { gc.Close(); return l.Close() },
		}, nil
	}
}

func openRaftWAL(group bool) func(dir string, w *Workload) (Instance, error) {
	return func(dir string, w *Workload) (Instance, error) {
		l, err := raftwal.Open(dir)
		if err != nil {
			return nil, err
		}
		ix := &indexed{next: 1}
		if !group {
			return funcInstance{
				writer: func() func() error {
					logs := []*raft.Log{{}}
					return func() error {
						ix.mu.Lock()
						defer ix.mu.Unlock()
						*logs[0] = raft.Log{Index: ix.next, Term: 1, Type: raft.LogCommand, Data: w.Payload}
						if err := l.StoreLogs(logs); err != nil {
							return err
						}
						ix.next++
						return nil
					}
				},
				close: l.Close,
			}, nil
		}
		var logs []*raft.Log
		gc := newGroupCommit(func(items [][]byte) error {
			for len(logs) < len(items) {
				logs = append(logs, &raft.Log{})
			}
			for i, p := range items {
				*logs[i] = raft.Log{Index: ix.next + uint64(i), Term: 1, Type: raft.LogCommand, Data: p}
			}
			if err := l.StoreLogs(logs[:len(items)]); err != nil {
				return err
			}
			ix.next += uint64(len(items))
			return nil
		})
		return funcInstance{
			writer: func() func() error { return func() error { return gc.Append(w.Payload) } },
			close:  func() error { gc.Close(); return l.Close() },
		}, nil
	}
}

func openZap(dir string, w *Workload) (Instance, error) {
	f, err := os.OpenFile(filepath.Join(dir, "zap.log"), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(f), zapcore.InfoLevel)
	logger := zap.New(core)
	fields := make([]zap.Field, 0, len(w.Event.Properties))
	for k, v := range w.Event.Properties {
		fields = append(fields, zap.Any(k, v))
	}
	msg := w.Event.Message
	return funcInstance{
		writer: func() func() error {
			return func() error {
				logger.Info(msg, fields...)
				return logger.Sync()
			}
		},
		close: func() error { return errors.Join(logger.Sync(), f.Close()) },
	}, nil
}

// mtlogWriter is one writer's call for the mtlog-based rows.
func mtlogWriter(logger core.Logger, w *Workload) func() error {
	l := logger.With(w.Context...)
	return func() error {
		l.Information(w.Template, w.Args...)
		return nil
	}
}

func openMtlogFile(dir string, w *Workload) (Instance, error) {
	fs, err := sinks.NewFileSink(filepath.Join(dir, "mtlog.log"))
	if err != nil {
		return nil, err
	}
	logger := mtlog.New(mtlog.WithSink(fs))
	return funcInstance{
		writer: func() func() error { return mtlogWriter(logger, w) },
		close:  fs.Close,
	}, nil
}

// durableInstance is mtlog's DurableSink around a FileSink; it reports the
// events it dropped.
type durableInstance struct {
	ds     *sinks.DurableSink
	logger core.Logger
	w      *Workload
	marked map[string]uint64
}

func openMtlogDurable(dir string, w *Workload) (Instance, error) {
	fs, err := sinks.NewFileSink(filepath.Join(dir, "mtlog.log"))
	if err != nil {
		return nil, err
	}
	ds, err := sinks.NewDurableSink(fs, sinks.DurableOptions{
		BufferPath: filepath.Join(dir, "buffer"),
		OnError:    func(error) {}, // drops are counted in GetMetrics; the default prints each one
	})
	if err != nil {
		fs.Close()
		return nil, err
	}
	return &durableInstance{ds: ds, logger: mtlog.New(mtlog.WithSink(ds)), w: w}, nil
}

func (d *durableInstance) Writer() func() error { return mtlogWriter(d.logger, d.w) }
func (d *durableInstance) Close() error         { return d.ds.Close() }
func (d *durableInstance) Mark()                { d.marked = d.ds.GetMetrics() }

func (d *durableInstance) Note(events uint64) string {
	now := d.ds.GetMetrics()
	dropped := now["dropped"] - d.marked["dropped"]
	delivered := now["delivered"] - d.marked["delivered"]
	if events == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%% of returned Emits dropped; %.0f%% reached the file by the end of the run",
		100*float64(dropped)/float64(events), 100*float64(delivered)/float64(events))
}
