package cli_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// infoJSON is the part of 'info --json' the tests check.
type infoJSON struct {
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	Records     uint64 `json:"records"`
	Events      uint64 `json:"events"`
	EventsExact bool   `json:"events_exact"`
	FirstTime   string `json:"first_event_time"`
	LastTime    string `json:"last_event_time"`
	Segments    int    `json:"segments"`
	Bytes       int64  `json:"bytes"`
	Checkpoint  *struct {
		TreeSize     uint64   `json:"tree_size"`
		Bytes        int      `json:"bytes"`
		SignerKeyIDs []string `json:"signer_key_ids"`
		Stored       int      `json:"stored"`
	} `json:"checkpoint"`
	Epochs struct {
		Current   uint64 `json:"current"`
		Rotations uint64 `json:"rotations"`
		Source    string `json:"source"`
	} `json:"epochs"`
	Mirrors struct {
		Recorded bool `json:"recorded"`
	} `json:"mirrors"`
	Lock struct {
		Held  bool   `json:"held"`
		Owner string `json:"owner"`
	} `json:"lock"`
	Problems []string `json:"problems"`
}

func runInfo(t *testing.T, dir string, args ...string) infoJSON {
	t.Helper()
	r := run(t, "", append([]string{"info", "--wal", dir, "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("info: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var in infoJSON
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("info --json: %v\n%s", err, r.stdout)
	}
	return in
}

// fixtureKeyID is the name+keyID of the fixture's key.
func fixtureKeyID(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "test.pub"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimSpace(string(data)), "+")
	return parts[0] + "+" + parts[1]
}

// TestInfo (issue 15): info describes the fixture, cheaply by default
// (the sealed segments' records are not read) and exactly with --full.
func TestInfo(t *testing.T) {
	dir := copyFixture(t)
	for _, full := range []bool{false, true} {
		var args []string
		if full {
			args = []string{"--full"}
		}
		in := runInfo(t, dir, args...)
		if in.FirstSeq != 1 || in.LastSeq != 43 || in.Records != 43 || in.Segments != 3 || in.Events != 40 || in.EventsExact != full {
			t.Errorf("full=%v: %+v", full, in)
		}
		if in.FirstTime != "2026-01-02T03:04:05Z" || in.LastTime != "2026-01-02T03:43:05Z" {
			t.Errorf("full=%v: times %s to %s", full, in.FirstTime, in.LastTime)
		}
		if in.Checkpoint == nil || in.Checkpoint.TreeSize != 43 || in.Checkpoint.Stored != 6 || in.Checkpoint.Bytes == 0 ||
			len(in.Checkpoint.SignerKeyIDs) != 1 || in.Checkpoint.SignerKeyIDs[0] != fixtureKeyID(t) {
			t.Errorf("full=%v: checkpoint %+v", full, in.Checkpoint)
		}
		if in.Lock.Held || in.Mirrors.Recorded || in.Epochs.Current != 0 || len(in.Problems) != 0 {
			t.Errorf("full=%v: %+v", full, in)
		}
		if want := map[bool]string{false: "checkpoints", true: "log"}[full]; in.Epochs.Source != want {
			t.Errorf("full=%v: epochs from %q", full, in.Epochs.Source)
		}
	}
	r := run(t, "", "info", "--wal", dir)
	for _, want := range []string{"seq 1 to 43 (43 records)", "segments:     3", "tree size 43", fixtureKeyID(t), "not held", "does not record its mirrors"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("info text lacks %q (exit %d):\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	// Cheap: damage inside the first (sealed) segment's records is not
	// read by default; --full reads it and reports it.
	seg := segments(t, dir)[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[1024+40] ^= 0x01
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if in := runInfo(t, dir); len(in.Problems) != 0 || in.LastSeq != 43 {
		t.Errorf("cheap info read the sealed segment's records: %+v", in)
	}
	if in := runInfo(t, dir, "--full"); len(in.Problems) == 0 {
		t.Errorf("info --full did not read the sealed segment's records: %+v", in)
	}
	// Not a log: the usage status and the common message.
	r = run(t, "", "info", "--wal", notALogDir(t))
	if r.code != 2 || !strings.Contains(r.stderr, "is not an mtlog-audit log (no segment files)") {
		t.Errorf("not a log: exit %d\n%s", r.code, r.stderr)
	}
}

// TestInfoLiveAndEpochs (issue 15): info on a log that a sink in this
// process is writing reports the lock holder and no damage, however the
// writes fall; with forward security, --full counts the rotation
// statements in the log.
func TestInfoLiveAndEpochs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	skey, _, err := integrity.GenerateKey("info.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.New(audit.WithWAL(dir, audit.WithSegmentSize(16<<10)), audit.WithSigningKey(skey),
		audit.WithCheckpoints(5, time.Millisecond, time.Minute), audit.WithForwardSecurity(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := s.Write(ctx, &audit.Event{Timestamp: time.Now(), MessageTemplate: "live {N}", Properties: map[string]any{"N": i}}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 5 {
		for _, args := range [][]string{nil, {"--full"}} {
			in := runInfo(t, dir, args...)
			if !in.Lock.Held || !strings.Contains(in.Lock.Owner, "pid") || len(in.Problems) != 0 || in.LastSeq == 0 {
				t.Errorf("live %v: %+v", args, in)
			}
		}
	}
	cancel()
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var meta uint64
	if _, err := wal.Check(t.Context(), vfs.OS(), dir, func(r wal.Record) error {
		if r.Type == wal.RecordMeta {
			meta++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if meta == 0 {
		t.Fatal("no key rotation in the log")
	}
	in := runInfo(t, dir, "--full")
	if in.Lock.Held || in.Epochs.Current != meta || in.Epochs.Rotations != meta || in.Epochs.Source != "log" {
		t.Errorf("after Close, %d rotations: %+v", meta, in)
	}
	if cheap := runInfo(t, dir); cheap.Epochs.Current == 0 || cheap.Epochs.Current > meta || cheap.Events < in.Events {
		t.Errorf("cheap epochs %+v, want 1..%d", cheap.Epochs, meta)
	}
}

// TestVerifyProofSaysWhat (issue 15): verify-proof prints the record's
// sequence number (index+1), the tree size, the origin and the signer,
// and for a consistency proof both sizes; --json too.
func TestVerifyProofSaysWhat(t *testing.T) {
	tmp := t.TempDir()
	incl, cons := filepath.Join(tmp, "i.json"), filepath.Join(tmp, "c.json")
	if r := run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", "5", "--output", incl); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := run(t, "", "prove", "consistency", "--wal", "wal", "--from", "10", "--to", "43", "--output", cons); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := run(t, "", "verify-proof", incl, "--key", "test.pub")
	for _, want := range []string{"VERIFIED", "record seq 5 (proof index 4 = seq-1)", "tree of 43 records", "origin:     " + keyName, fixtureKeyID(t)} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("lacks %q (exit %d):\n%s%s", want, r.code, r.stdout, r.stderr)
		}
	}
	r = run(t, "", "verify-proof", cons, "--key", "test.pub")
	if r.code != 0 || !strings.Contains(r.stdout, "the tree of 10 records is a prefix of the tree of 43 records") {
		t.Errorf("consistency (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	var res struct {
		Verified     bool     `json:"verified"`
		Kind         string   `json:"kind"`
		Seq          uint64   `json:"seq"`
		Index        *uint64  `json:"index"`
		TreeSize     uint64   `json:"tree_size"`
		Size1        uint64   `json:"size1"`
		Size2        uint64   `json:"size2"`
		Origin       string   `json:"origin"`
		SignerKeyIDs []string `json:"signer_key_ids"`
		Error        string   `json:"error"`
	}
	r = run(t, "", "verify-proof", incl, "--key", "test.pub", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || !res.Verified || res.Kind != "inclusion" || res.Seq != 5 ||
		res.Index == nil || *res.Index != 4 || res.TreeSize != 43 || res.Origin != keyName || len(res.SignerKeyIDs) != 1 || res.SignerKeyIDs[0] != fixtureKeyID(t) {
		t.Errorf("inclusion --json (exit %d, %v): %+v\n%s", r.code, err, res, r.stdout)
	}
	res = struct {
		Verified     bool     `json:"verified"`
		Kind         string   `json:"kind"`
		Seq          uint64   `json:"seq"`
		Index        *uint64  `json:"index"`
		TreeSize     uint64   `json:"tree_size"`
		Size1        uint64   `json:"size1"`
		Size2        uint64   `json:"size2"`
		Origin       string   `json:"origin"`
		SignerKeyIDs []string `json:"signer_key_ids"`
		Error        string   `json:"error"`
	}{}
	r = run(t, "", "verify-proof", cons, "--key", "test.pub", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Kind != "consistency" || res.Size1 != 10 || res.Size2 != 43 {
		t.Errorf("consistency --json (exit %d, %v): %+v", r.code, err, res)
	}
	// A proof that does not verify: verified false, the reason, status 1.
	other, _, err := integrity.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _ := publicOf(t, other)
	res.Verified = true
	r = run(t, "", "verify-proof", incl, "--key", otherPub, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 || res.Verified || res.Error == "" {
		t.Errorf("failing --json (exit %d, %v): %+v", r.code, err, res)
	}
	if r := run(t, "", "verify-proof", "--help"); !strings.Contains(r.stdout, "index = seq-1") {
		t.Errorf("help does not explain the index:\n%s", r.stdout)
	}
}

// publicOf returns the public key of a private key, as keys show prints it.
func publicOf(t *testing.T, skey string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(f, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "keys", "show", "--key", f)
	ls := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return ls[len(ls)-1], nil
}

// proofLeafHash is the leaf_hash of 'prove inclusion --seq N'.
func proofLeafHash(t *testing.T, seq uint64) string {
	t.Helper()
	r := run(t, "", "prove", "inclusion", "--wal", "wal", "--seq", strconv.FormatUint(seq, 10))
	var b struct {
		LeafHash string `json:"leaf_hash"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil || b.LeafHash == "" {
		t.Fatalf("prove --seq %d: %v\n%s%s", seq, err, r.stdout, r.stderr)
	}
	return b.LeafHash
}

// TestWithHash (issue 15): replay --with-hash and export --with-hash
// (jsonl, csv) print for seq N the leaf hash that 'prove inclusion' proves
// for seq N, whatever the selection.
func TestWithHash(t *testing.T) {
	want := map[uint64]string{}
	for _, n := range []uint64{1, 5, 17, 42} {
		want[n] = proofLeafHash(t, n)
	}
	check := func(what string, got map[uint64]string) {
		t.Helper()
		for n, h := range want {
			if g, ok := got[n]; ok && g != h {
				t.Errorf("%s: seq %d leaf_hash %s, prove says %s", what, n, g, h)
			}
		}
	}
	fromJSON := func(what, out string) map[uint64]string {
		t.Helper()
		got := map[uint64]string{}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var l struct {
				Seq      uint64 `json:"seq"`
				LeafHash string `json:"leaf_hash"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.LeafHash == "" {
				t.Fatalf("%s: %v: %s", what, err, sc.Text())
			}
			got[l.Seq] = l.LeafHash
		}
		return got
	}
	r := run(t, "", "replay", "--wal", "wal", "--json", "--with-hash")
	got := fromJSON("replay", r.stdout)
	if r.code != 0 || len(got) != 40 {
		t.Fatalf("replay: exit %d, %d events\n%s", r.code, len(got), r.stderr)
	}
	check("replay", got)
	// A selection that starts late still hashes from record 1.
	r = run(t, "", "replay", "--wal", "wal", "--json", "--with-hash", "--seq", "40..43", "--since", "2026-01-02T03:30:00Z")
	got = fromJSON("replay --seq", r.stdout)
	if _, ok := got[42]; r.code != 0 || !ok {
		t.Fatalf("replay --seq 40..43: exit %d %v\n%s", r.code, got, r.stderr)
	}
	check("replay --seq", got)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "e.jsonl")
	if r := run(t, "", "export", "--wal", "wal", "--format", "jsonl", "--output", out, "--with-hash"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	data, _ := os.ReadFile(out)
	check("export jsonl", fromJSON("export jsonl", string(data)))
	out = filepath.Join(tmp, "e.csv")
	if r := run(t, "", "export", "--wal", "wal", "--format", "csv", "--output", out, "--with-hash"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	f, _ := os.Open(out)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 41 || rows[0][1] != "leaf_hash" {
		t.Fatalf("csv: %v %d rows %v", err, len(rows), rows[:1])
	}
	got = map[uint64]string{}
	for _, row := range rows[1:] {
		n, _ := strconv.ParseUint(row[0], 10, 64)
		got[n] = row[1]
	}
	check("export csv", got)
	if r := run(t, "", "export", "--wal", "wal", "--format", "parquet", "--output", filepath.Join(tmp, "p"), "--with-hash"); r.code != 2 {
		t.Errorf("parquet --with-hash: exit %d", r.code)
	}
	if r := run(t, "", "replay", "--wal", "wal", "--with-hash"); r.code != 2 {
		t.Errorf("text --with-hash: exit %d", r.code)
	}
}

// TestReplaySkipNote (issue 15): replay's text output says on stderr why
// sequence numbers skip: the records between the first and the last event
// printed that are not events.
func TestReplaySkipNote(t *testing.T) {
	note := regexp.MustCompile(`note: sequence numbers #(\d+) to #(\d+) skip (\d+) records? that are not events`)
	for _, args := range [][]string{nil, {"--last", "25"}, {"--since", "2026-01-02T03:10:00Z"}, {"--seq", "2..30"}} {
		r := run(t, "", append([]string{"replay", "--wal", "wal"}, args...)...)
		m := note.FindStringSubmatch(r.stderr)
		if r.code != 0 || m == nil {
			t.Fatalf("%v: exit %d, no note:\n%s", args, r.code, r.stderr)
		}
		first, _ := strconv.Atoi(m[1])
		last, _ := strconv.Atoi(m[2])
		skip, _ := strconv.Atoi(m[3])
		printed := lines(r.stdout) - strings.Count(r.stdout, "\n    ") // exceptions take extra lines
		if want := last - first + 1 - printed; skip != want || skip == 0 {
			t.Errorf("%v: note says %d skipped, #%d..#%d with %d events printed: want %d", args, skip, first, last, printed, want)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("#%d ", first)) || !strings.Contains(r.stdout, fmt.Sprintf("#%d ", last)) {
			t.Errorf("%v: note names #%d..#%d, not printed", args, first, last)
		}
	}
	if r := run(t, "", "replay", "--wal", "wal", "--output", "json"); strings.Contains(r.stderr, "note:") {
		t.Errorf("json output has the note: %s", r.stderr)
	}
	if r := run(t, "", "replay", "--wal", "wal", "--quiet"); strings.Contains(r.stderr, "note:") {
		t.Errorf("--quiet output has the note: %s", r.stderr)
	}
}
