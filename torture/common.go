package torture

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// logDir is where the in-memory scenarios put the log.
const logDir = "/audit"

// keyName is the name (and checkpoint origin) of the scenarios' signing keys.
const keyName = "torture.mtlog-audit.example/log"

// keyPair derives an Ed25519 signed-note key pair from seed, in the format
// of integrity.GenerateKey, so that a process that knows only the seed (the
// parent of a Kill9DuringWrite child) knows the public key.
func keyPair(seed int64) (skey, vkey string) {
	var s [ed25519.SeedSize]byte
	r := rand.New(rand.NewPCG(uint64(seed), 0x6b6579))
	for i := 0; i < len(s); i += 8 {
		binary.LittleEndian.PutUint64(s[i:], r.Uint64())
	}
	pub := ed25519.NewKeyFromSeed(s[:]).Public().(ed25519.PublicKey)
	h := sha256.New()
	h.Write([]byte(keyName + "\n\x01"))
	h.Write(pub)
	id := binary.BigEndian.Uint32(h.Sum(nil))
	enc := func(b []byte) string { return base64.StdEncoding.EncodeToString(append([]byte{1}, b...)) }
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", keyName, id, enc(s[:]))
	vkey = fmt.Sprintf("%s+%08x+%s", keyName, id, enc(pub))
	return skey, vkey
}

// makeEvent builds event number i of writer g with timestamp ts; its
// content is drawn from rng. Payload sizes vary from tens of bytes to about
// 700, with runs of zeros now and then (which must not look like a torn
// write).
func makeEvent(rng *rand.Rand, g, i int, ts time.Time) *audit.Event {
	blob := make([]byte, rng.IntN(400))
	if rng.IntN(4) != 0 {
		for j := range blob {
			blob[j] = byte(rng.Uint32())
		}
	}
	return &audit.Event{
		Timestamp:       ts,
		Level:           audit.Level(rng.IntN(6)),
		MessageTemplate: "User {UserId} did {Action} #{N}",
		Message:         fmt.Sprintf("User u-%d did write #%d", g, i),
		Properties:      map[string]any{"UserId": fmt.Sprintf("u-%d", g), "Action": "write", "N": i, "Blob": blob},
	}
}

// drawEvents draws the events of writers writers of perWriter events each,
// then of one more writer for each count in extra, in that order (so that a
// seed always draws the same workload; the regression seeds depend on it),
// timestamped 1 s apart per writer and 1 ms apart within one. It returns the
// events per writer, their encodings, and the set of every encoding.
func drawEvents(rng *rand.Rand, writers, perWriter int, extra ...int) (events [][]*audit.Event, payloads [][][]byte, written map[string]bool) {
	counts := make([]int, writers, writers+len(extra))
	for g := range counts {
		counts[g] = perWriter
	}
	counts = append(counts, extra...)
	base := time.Unix(1_700_000_000, 0).UTC()
	events = make([][]*audit.Event, len(counts))
	payloads = make([][][]byte, len(counts))
	written = map[string]bool{}
	for g, n := range counts {
		for i := range n {
			ev := makeEvent(rng, g, i, base.Add(time.Duration(g*1000+i)*time.Millisecond))
			events[g] = append(events[g], ev)
			p := encode(ev)
			payloads[g] = append(payloads[g], p)
			written[string(p)] = true
		}
	}
	return events, payloads, written
}

// newRand returns a PCG generator seeded with seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// encode returns the bytes the Sink stores for ev.
func encode(ev *audit.Event) []byte {
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		panic(fmt.Sprintf("torture: encode event: %v", err))
	}
	return b
}

// acks records acknowledged events by sequence number, safely from many
// writers.
type acks struct {
	mu sync.Mutex
	m  map[uint64][]byte
}

func newAcks() *acks { return &acks{m: map[uint64][]byte{}} }

func (a *acks) add(seq uint64, payload []byte) {
	a.mu.Lock()
	a.m[seq] = payload
	a.mu.Unlock()
}

func (a *acks) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

func (a *acks) snapshot() map[uint64][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[uint64][]byte, len(a.m))
	for k, v := range a.m {
		m[k] = v
	}
	return m
}

// stored is one record read back from a log.
type stored struct {
	Type    wal.RecordType
	Time    int64
	Payload []byte
	Segment uint64
	Offset  int64 // of the record's batch
	// Tagged is set on the last record of a batch that carries an
	// authentication tag (a 36-byte trailer after its records).
	Tagged bool
}

// readLog reads every record of the log in dir with wal.Check (read only).
func readLog(ctx context.Context, fsys vfs.FS, dir string) (map[uint64]stored, *wal.Report, error) {
	got := map[uint64]stored{}
	rep, err := wal.Check(ctx, fsys, dir, func(r wal.Record) error {
		got[r.Seq] = stored{Type: r.Type, Time: r.Time, Payload: bytes.Clone(r.Payload), Segment: r.Segment, Offset: r.Offset, Tagged: r.BatchEnd && r.Tagged}
		return nil
	})
	return got, rep, err
}

// checkAcked reports the first acknowledged event that is missing from got
// or differs from what was acknowledged.
func checkAcked(got map[uint64]stored, acked map[uint64][]byte) error {
	seqs := make([]uint64, 0, len(acked))
	for s := range acked {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		r, ok := got[seq]
		switch {
		case !ok:
			return fmt.Errorf("acknowledged event %d is missing (the log holds %d records)", seq, len(got))
		case r.Type != wal.RecordEvent:
			return fmt.Errorf("acknowledged event %d is a record of type %v", seq, r.Type)
		case !bytes.Equal(r.Payload, acked[seq]):
			return fmt.Errorf("acknowledged event %d was altered: %d bytes stored, %d acknowledged, first difference at byte %d", seq, len(r.Payload), len(acked[seq]), firstDiff(r.Payload, acked[seq]))
		}
	}
	return nil
}

// checkOnlyWritten reports an event record whose payload is none of the
// payloads written (bytes nobody wrote, returned as an event).
func checkOnlyWritten(got map[uint64]stored, written map[string]bool) error {
	for seq, r := range got {
		if r.Type == wal.RecordEvent && !written[string(r.Payload)] {
			return fmt.Errorf("event record %d holds %d bytes that no writer wrote", seq, len(r.Payload))
		}
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// verify runs audit.VerifyFS with the public key and returns an error
// unless the log verified; with covered, every record must also be covered
// by a verified signed checkpoint.
func verify(ctx context.Context, fsys vfs.FS, dir, vkey string, covered bool) (*audit.IntegrityReport, error) {
	rep, err := audit.VerifyFS(ctx, fsys, dir, audit.WithTrustedKeys(vkey))
	switch {
	case err != nil:
		return rep, fmt.Errorf("verify: %w", err)
	case rep == nil || !rep.OK:
		return rep, fmt.Errorf("verify: not OK: %+v", rep)
	case covered && rep.UncoveredTail() > 0:
		return rep, fmt.Errorf("verify: %d of %d records are not covered by a signed checkpoint after Close", rep.UncoveredTail(), rep.Records)
	}
	return rep, nil
}

// sinkOptions are the options of the in-memory scenarios' sinks: small
// segments (rotation every few events), a signing key and a checkpoint
// every cpEvery records (and every 2ms of activity).
func sinkOptions(fsys vfs.FS, skey string, segSize int64, cpEvery int, extra ...audit.Option) []audit.Option {
	opts := []audit.Option{
		audit.WithWAL(logDir, audit.WithSegmentSize(segSize)),
		audit.WithFileSystem(fsys),
		audit.WithSigningKey(skey),
		audit.WithCheckpoints(cpEvery, 2*time.Millisecond, time.Hour),
	}
	return append(opts, extra...)
}

// reopenCheck opens the log on fsys (recovering it), closes it, verifies it
// with the key (everything covered after Close) and checks every
// acknowledged event, and that every event holds bytes a writer wrote
// (written may be nil to skip that). It returns the records read.
func reopenCheck(ctx context.Context, fsys vfs.FS, skey, vkey string, acked map[uint64][]byte, written map[string]bool, opts ...audit.Option) (map[uint64]stored, error) {
	sink, err := audit.New(append(sinkOptions(fsys, skey, 1<<20, 1<<20), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("reopen: %w", err)
	}
	if err := sink.Close(); err != nil {
		return nil, fmt.Errorf("close after reopen: %w", err)
	}
	if _, err := verify(ctx, fsys, logDir, vkey, true); err != nil {
		return nil, fmt.Errorf("after reopen: %w", err)
	}
	got, _, err := readLog(ctx, fsys, logDir)
	if err != nil {
		return nil, fmt.Errorf("read after reopen: %w", err)
	}
	if err := checkAcked(got, acked); err != nil {
		return got, err
	}
	if written != nil {
		if err := checkOnlyWritten(got, written); err != nil {
			return got, err
		}
	}
	return got, nil
}

// crashOptions draws what survives a power loss.
func crashOptions(rng *rand.Rand) vfs.CrashOptions {
	co := vfs.CrashOptions{Seed: rng.Int64(), SectorSize: []int{512, 4096}[rng.IntN(2)], KeepSectorProb: rng.Float64(), KeepDirOpProb: rng.Float64()}
	switch rng.IntN(6) { // the extremes are the interesting cases
	case 0:
		co.KeepSectorProb, co.KeepDirOpProb = 0, 0
	case 1:
		co.KeepSectorProb, co.KeepDirOpProb = 1, 1
	}
	return co
}

// isErr reports whether err matches any of targets.
func isErr(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
