package cli_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/event"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/internal/remotetest"
	"github.com/willibrandon/mtlog-audit/protect"
	"github.com/willibrandon/mtlog-audit/vfs"
	"github.com/willibrandon/mtlog-audit/wal"
)

// The guide is docs/recovery.md. A block it walks through follows a line
// "<!-- walk: NAME -->" and is a ```sh block of commands using the variables
// its table defines (LOG, OUT, MIRROR, BACKEND, PUB, KEY, ...).
const guidePath = "../../docs/recovery.md"

var walkMarker = regexp.MustCompile("(?m)^<!-- walk: ([a-z0-9-]+) -->\n```sh\n((?s:.*?))```")

// guideBlocks returns the guide's walked-through blocks by name.
func guideBlocks(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range walkMarker.FindAllStringSubmatch(string(data), -1) {
		if _, dup := blocks[m[1]]; dup {
			t.Fatalf("%s: two blocks are named %q", guidePath, m[1])
		}
		blocks[m[1]] = m[2]
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no <!-- walk: NAME --> block", guidePath)
	}
	return blocks
}

// guideEnvHolder, when set, makes this test binary hold the log it names
// open (see holdLog): the second process of the vfs.ErrLocked walk.
const guideEnvHolder = "MTLOG_AUDIT_GUIDE_HOLD"

func init() {
	if dir := os.Getenv(guideEnvHolder); dir != "" {
		os.Exit(holdLog(dir, os.Getenv(guideEnvHolder+"_KEY")))
	}
}

// holdLog opens the log in dir, says "ready" on stdout, and closes it when
// SIGTERM comes, as an application does.
func holdLog(dir, skey string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	s, err := audit.New(audit.WithWAL(dir), audit.WithSigningKey(skey))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	<-term
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// guide is one walk through the guide: a signed log on the OS filesystem
// and the variables of the guide's commands.
type guide struct {
	t          *testing.T
	skey, vkey string
	vars       map[string]string
	used       map[string]bool
	blocks     map[string]string
}

// walkSegment is the segment size of the walks' logs: 40 events fill
// three segments.
const walkSegment = 8 << 10

// newGuide makes the key pair and the variables of one walk.
func newGuide(t *testing.T, blocks map[string]string, used map[string]bool) *guide {
	t.Helper()
	skey, vkey, err := integrity.GenerateKey("recovery-guide.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	g := &guide{t: t, skey: skey, vkey: vkey, blocks: blocks, used: used, vars: map[string]string{
		"LOG":      filepath.Join(tmp, "audit"),
		"EVIDENCE": filepath.Join(tmp, "audit.evidence"),
		"OUT":      filepath.Join(tmp, "audit-recovered"),
		"MIRROR":   filepath.Join(tmp, "mirror"),
		"PUB":      filepath.Join(tmp, "audit.pub"),
		"KEY":      filepath.Join(tmp, "audit.key"),
	}}
	writeFile(t, g.vars["KEY"], skey+"\n", 0o600)
	writeFile(t, g.vars["PUB"], vkey+"\n", 0o644)
	return g
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// options are the application's options for the log in dir.
func (g *guide) options(dir string, extra ...audit.Option) []audit.Option {
	return append([]audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(walkSegment)), audit.WithSigningKey(g.skey),
		audit.WithCheckpoints(10, time.Hour, time.Hour)}, extra...)
}

// build writes n events into the log in dir and closes it.
func (g *guide) build(dir string, n int, extra ...audit.Option) {
	g.t.Helper()
	s, err := audit.New(g.options(dir, extra...)...)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		g.t.Fatal(err)
	}
}

// open opens the log in dir as the application does and returns New's
// error (nil: it opened, and was closed again).
func (g *guide) open(dir string, extra ...audit.Option) error {
	s, err := audit.New(g.options(dir, extra...)...)
	if err != nil {
		return err
	}
	return s.Close()
}

// refuses checks that New returns an error matching want and containing
// each of says.
func (g *guide) refuses(dir string, want error, says []string, extra ...audit.Option) {
	g.t.Helper()
	err := g.open(dir, extra...)
	if !errors.Is(err, want) {
		g.t.Fatalf("New: %v, want an error matching %v", err, want)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			g.t.Fatalf("New's error does not say %q: %v", s, err)
		}
	}
	g.t.Logf("New: %v", err)
}

// verify runs mtlog-audit verify on dir with the key and checks its exit
// status.
func (g *guide) verify(dir string, code int) result {
	g.t.Helper()
	r := run(g.t, g.t.TempDir(), "verify", "--wal", dir, "--key", g.vars["PUB"])
	if r.code != code {
		g.t.Fatalf("verify %s: exit %d, want %d\n%s%s", dir, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// verifySays checks that mtlog-audit verify on dir exits with code and
// says want (on stdout or stderr).
func (g *guide) verifySays(dir string, code int, want string) {
	g.t.Helper()
	if r := g.verify(dir, code); !strings.Contains(r.stdout+r.stderr, want) {
		g.t.Fatalf("verify %s does not say %q:\n%s%s", dir, want, r.stdout, r.stderr)
	}
}

// follow runs the guide's block name, one command at a time, with the
// guide's variables and the command built from this checkout first on
// PATH, and checks each command's exit status against codes (0 for
// commands past its end). It returns the output of each command.
func (g *guide) follow(name string, codes ...int) []string {
	g.t.Helper()
	block, ok := g.blocks[name]
	if !ok {
		g.t.Fatalf("%s has no block <!-- walk: %s -->", guidePath, name)
	}
	g.used[name] = true
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range g.vars {
		env = append(env, k+"="+v)
	}
	var outs []string
	for i, line := range commands(block) {
		want := 0
		if i < len(codes) {
			want = codes[i]
		}
		cmd := exec.Command("bash", "-uo", "pipefail", "-c", line)
		cmd.Dir = g.t.TempDir()
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			g.t.Fatal(err)
		}
		g.t.Logf("$ %s\n%s(exit %d)", line, out, code)
		if code != want {
			g.t.Fatalf("the guide's step %q (block %s) exited %d, want %d:\n%s", line, name, code, want, out)
		}
		outs = append(outs, string(out))
	}
	return outs
}

// commands splits a shell block into its commands (a line ending in a
// backslash continues on the next; blank lines and comments are skipped).
func commands(block string) []string {
	var cmds []string
	var cur strings.Builder
	for line := range strings.Lines(block) {
		line = strings.TrimRight(line, "\n")
		if cur.Len() == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
			continue
		}
		if c, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(c + " ")
			continue
		}
		cur.WriteString(line)
		cmds = append(cmds, cur.String())
		cur.Reset()
	}
	return cmds
}

// events returns the sequence numbers of the events of the log in dir.
func events(t *testing.T, dir string) []uint64 {
	t.Helper()
	var seqs []uint64
	for r, err := range wal.NewReader(vfs.OS(), dir).Records(context.Background(), 1) {
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		if r.Type == wal.RecordEvent {
			seqs = append(seqs, r.Seq)
		}
	}
	return seqs
}

// recovered checks the end of a walk: the log in dir verifies (exit 0 or
// 3), opens with New, and holds n events (the first with the sequence
// number first when first > 0).
func (g *guide) recovered(dir string, n int, first uint64, extra ...audit.Option) {
	g.t.Helper()
	if r := run(g.t, g.t.TempDir(), "verify", "--wal", dir, "--key", g.vars["PUB"]); r.code != 0 && r.code != 3 {
		g.t.Fatalf("verify the recovered log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	seqs := events(g.t, dir)
	if len(seqs) != n {
		g.t.Fatalf("the recovered log holds %d events, want %d", len(seqs), n)
	}
	if first > 0 && n > 0 && seqs[0] != first {
		g.t.Fatalf("the recovered log's first event is number %d, want %d", seqs[0], first)
	}
	if err := g.open(dir, extra...); err != nil {
		g.t.Fatalf("New on the recovered log: %v", err)
	}
	if r := run(g.t, g.t.TempDir(), "verify", "--wal", dir, "--key", g.vars["PUB"]); r.code != 0 && r.code != 3 {
		g.t.Fatalf("verify the recovered log after New: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// sealed returns the log's segment files, checking that there are at
// least three.
func sealed(t *testing.T, dir string) []string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("%s has %d segments, want ≥ 3", dir, len(segs))
	}
	return segs
}

// last returns the log's last segment file: the one New reads in full
// (it checks earlier segments by their seals).
func last(t *testing.T, dir string) string {
	t.Helper()
	segs := sealed(t, dir)
	return segs[len(segs)-1]
}

// damage flips a byte inside an acknowledged batch of the sealed segment
// at path and one of its seal: a bad disk region. (New checks a sealed
// segment by its seal, and reads it in full when the seal does not check;
// damage inside a segment whose seal holds is found by verify and every
// reader.)
func damage(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	flip(t, path, 3000)
	flip(t, path, int(fi.Size())-wal.SectorSize+100)
}

// flip flips one byte of the file at path at offset off.
func flip(t *testing.T, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x40
	writeFile(t, path, string(data), 0o644)
}

// copyDir copies the directory src to dst, as cp -a would.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes files 0644 or 0755: keep private files private.
	for _, name := range []string{"epoch.key", "epoch.tagkey.prev"} {
		if _, err := os.Stat(filepath.Join(dst, name)); err == nil {
			if err := os.Chmod(filepath.Join(dst, name), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Remove(filepath.Join(dst, wal.LockName))
}

// ship ships the closed log in dir to a new filesystem backend and sets
// BACKEND to its file:// URL.
func (g *guide) ship(dir string) {
	g.t.Helper()
	b := remotetest.FSBackend(g.t)
	remotetest.Ship(g.t, dir, b)
	g.vars["BACKEND"] = b.Name()
}

// testClock returns a clock for WithClock that starts at start and moves
// when the test stores another time.
func testClock(start time.Time) (*atomic.Int64, audit.Option) {
	now := new(atomic.Int64)
	now.Store(start.UnixNano())
	return now, audit.WithClock(func() time.Time { return time.Unix(0, now.Load()) })
}

// forge appends one event to the log in dir the way anyone without the
// key can: through package wal (correct chain, checksums and whitening).
func forge(t *testing.T, dir string) {
	t.Helper()
	w, err := wal.Open(vfs.OS(), dir, wal.Options{SegmentSize: walkSegment})
	if err != nil {
		t.Fatal(err)
	}
	ev := &audit.Event{Timestamp: time.Unix(1_900_000_000, 0).UTC(), MessageTemplate: "granted admin to {User}", Properties: map[string]any{"User": "mallory"}}
	b, err := event.AppendEncode(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), wal.RecordEvent, ev.Timestamp.UnixNano(), b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryGuide walks through every section of docs/recovery.md: for
// each error it builds a real log, produces the error as a user meets it,
// checks that New and verify return it, follows the guide's commands as
// written, and checks that the result opens, verifies and holds the events
// the guide promises. Every walked-through block of the guide is followed.
func TestRecoveryGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and damages many logs: not in -short")
	}
	blocks := guideBlocks(t)
	used := map[string]bool{}
	const n = 40 // events of each log

	t.Run("wal.ErrCorrupt/mirror", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		copyDir(t, log, g.vars["MIRROR"])
		damage(t, last(t, log))
		g.refuses(log, wal.ErrCorrupt, []string{"00000000000000000003.wal", "offset"})
		g.verify(log, 1)
		g.follow("corrupt-mirror")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("wal.ErrCorrupt/restore", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		g.ship(log)
		damage(t, last(t, log))
		g.refuses(log, wal.ErrCorrupt, []string{"00000000000000000003.wal"})
		g.verify(log, 1)
		g.follow("corrupt-restore")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("wal.ErrCorrupt/salvage", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		damage(t, last(t, log))
		// The events before the damaged batch are the ones safe mode
		// keeps.
		var keep int
		if _, err := wal.Check(context.Background(), vfs.OS(), log, func(r wal.Record) error {
			if r.Type == wal.RecordEvent {
				keep++
			}
			return nil
		}); !errors.Is(err, wal.ErrCorrupt) || keep == 0 || keep >= n {
			t.Fatal(keep, err)
		}
		g.refuses(log, wal.ErrCorrupt, nil)
		g.verify(log, 1)
		outs := g.follow("corrupt-salvage", 0, 1, 0)
		if !strings.Contains(outs[1], "gap") {
			t.Fatalf("recover --mode safe does not report the gap:\n%s", outs[1])
		}
		g.recovered(g.vars["OUT"], keep, 1)
	})
	t.Run("wal.ErrUnknownVersion", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		seg := sealed(t, log)[0]
		data, _ := os.ReadFile(seg)
		// A newer version with an intact header checksum (see
		// TestUnknownFormatVersion).
		data[8] = 0x7f
		binary.LittleEndian.PutUint32(data[80:], crc32.Checksum(data[:80], crc32.MakeTable(crc32.Castagnoli)))
		writeFile(t, seg, string(data), 0o644)
		g.refuses(log, wal.ErrUnknownVersion, []string{"upgrade"})
		g.verifySays(log, 2, "upgrade")
		if out := g.follow("unknown-version"); !strings.Contains(out[0], "mtlog-audit") {
			t.Fatalf("version prints no version:\n%s", out[0])
		}
	})
	t.Run("wal.ErrNotWAL", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		// The wrong path: the parent directory, which holds the keys.
		wrong := filepath.Dir(log)
		g.refuses(wrong, wal.ErrNotWAL, nil)
		g.verifySays(wrong, 2, "not an mtlog-audit log")
		g.vars["LOG"] = wrong
		g.follow("not-wal", 2)
		g.vars["LOG"] = log
		if out := g.follow("not-wal", 0); !strings.Contains(out[0], "segments") {
			t.Fatalf("info on the log does not describe it:\n%s", out[0])
		}
		g.recovered(log, n, 1)
	})
	t.Run("vfs.ErrLocked", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		holder := exec.Command(os.Args[0], "-test.run=^$")
		holder.Env = append(os.Environ(), guideEnvHolder+"="+log, guideEnvHolder+"_KEY="+g.skey)
		holder.Stderr = os.Stderr
		stdout, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		done := false
		defer func() {
			if !done {
				holder.Process.Kill()
				holder.Wait()
			}
		}()
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("the second process did not open the log: %q %v", line, err)
		}
		pid := fmt.Sprint(holder.Process.Pid)
		g.refuses(log, vfs.ErrLocked, []string{"pid " + pid})
		g.verify(log, 0) // readers need no lock
		g.vars["PID"] = pid
		out := g.follow("locked", 0, 0)
		if !strings.Contains(out[0], "pid "+pid) {
			t.Fatalf("info does not name the holder (pid %s):\n%s", pid, out[0])
		}
		if err := holder.Wait(); err != nil {
			t.Fatalf("the holder did not close the log on SIGTERM: %v", err)
		}
		done = true
		g.recovered(log, n, 1)
	})
	t.Run("audit.ErrIntegrity/prefix-deleted", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		g.ship(log)
		os.Remove(sealed(t, log)[0])
		g.refuses(log, audit.ErrIntegrity, []string{"retention", "restore"})
		g.verifySays(log, 1, string(integrity.CodeRetention))
		g.follow("integrity-restore")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("audit.ErrIntegrity/truncated", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		g.ship(log)
		segs := sealed(t, log)
		os.Remove(segs[len(segs)-1])
		g.refuses(log, audit.ErrIntegrity, []string{"removed from the end"})
		g.verifySays(log, 1, string(integrity.CodeTruncated))
		g.follow("integrity-restore")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("audit.ErrIntegrity/records-altered", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		g.ship(log)
		// Someone with the files but not the key puts in another log's
		// segments, valid in every checksum and seal, whose sixth event
		// says something else: the signed checkpoints do not match them.
		other := filepath.Join(t.TempDir(), "other")
		s, err := audit.New(g.options(other)...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			ev := fixtureEvent(i)
			if i == 5 {
				ev.Properties["Count"] = int64(9990)
			}
			if _, err := s.Write(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, seg := range sealed(t, log) {
			if err := os.Remove(seg); err != nil {
				t.Fatal(err)
			}
		}
		for _, seg := range sealed(t, other) {
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(log, filepath.Base(seg)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// New reads only the right edge of the stored tree, which the
		// last record still reproduces: verify reads every record.
		g.verifySays(log, 1, string(integrity.CodeRecordsAltered))
		g.follow("integrity-restore")
		g.recovered(g.vars["OUT"], n, 1)
		for ev, err := range audit.Replay(context.Background(), g.vars["OUT"], time.Time{}, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
			if c, _ := ev.Properties["Count"].(int64); c == 9990 {
				t.Fatal("the restored log holds the altered event")
			}
		}
	})
	t.Run("audit.ErrIntegrity/tree-node-damaged", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		flip(t, filepath.Join(log, integrity.NodesFile), 100)
		if err := g.open(log); err != nil {
			t.Fatalf("New: %v (it does not read the stored tree)", err)
		}
		g.verifySays(log, 1, string(integrity.CodeTreeNodeDamaged))
		g.follow("tree-nodes")
		g.recovered(log, n, 1)
		if r := g.verify(log, 0); !strings.Contains(r.stdout, "tree nodes:") || strings.Contains(r.stdout, "tree nodes:  0 checked") {
			t.Fatalf("New did not rebuild the tree:\n%s", r.stdout)
		}
	})
	t.Run("audit.ErrIntegrity/retention-checkpoint", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		// The events are of January 2026 (fixtureEvent); a year and a
		// half later, a year's retention deletes every sealed segment
		// but the newest.
		now, clock := testClock(fixtureStart)
		ret := audit.WithRetention(365 * 24 * time.Hour)
		g.build(log, n, clock, ret)
		now.Store(fixtureStart.AddDate(1, 6, 0).UnixNano())
		s, err := audit.New(g.options(log, clock, ret)...)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.ApplyRetention(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if rep.Deleted == 0 {
			t.Fatalf("retention deleted nothing: %+v", rep)
		}
		kept := events(t, log)
		copyDir(t, log, g.vars["MIRROR"])
		flip(t, filepath.Join(log, integrity.RetentionFile), 40)
		g.refuses(log, audit.ErrIntegrity, nil, clock, ret)
		g.verify(log, 1)
		g.follow("retention-mirror")
		g.recovered(g.vars["OUT"], len(kept), kept[0], clock, ret)
	})
	t.Run("audit.ErrUnauthenticated", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		g.ship(log)
		forge(t, log)
		g.refuses(log, audit.ErrUnauthenticated, []string{"not authenticated"})
		g.verify(log, 3)
		g.follow("unauthenticated-restore")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("audit.ErrEpochKeyMismatch", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		// The log's clock: two hours pass while it runs, and its second
		// half is written in key epoch 1.
		now, clock := testClock(fixtureStart)
		fs := []audit.Option{audit.WithForwardSecurity(time.Hour), clock}
		s, err := audit.New(g.options(log, fs...)...)
		if err != nil {
			t.Fatal(err)
		}
		var old []byte // a backup of epoch.key, taken in epoch 0
		for i := range n {
			if i == n/2 {
				if old, err = os.ReadFile(filepath.Join(log, "epoch.key")); err != nil {
					t.Fatal(err)
				}
				now.Add(int64(2 * time.Hour))
			}
			if _, err := s.Write(context.Background(), fixtureEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		copyDir(t, log, g.vars["MIRROR"])
		if rep, err := audit.Verify(context.Background(), log, audit.WithTrustedKeys(g.vkey)); err != nil || rep.Epoch == 0 {
			t.Fatalf("the log did not rotate its key: %v", err)
		}
		// The old backup put back in place of the current epoch's key.
		writeFile(t, filepath.Join(log, "epoch.key"), string(old), 0o600)
		g.refuses(log, audit.ErrEpochKeyMismatch, []string{"restore it from a mirror or backup"}, fs...)
		g.verify(log, 0)
		g.follow("epoch-key")
		g.recovered(log, n, 1, fs...)
		// Another log's epoch.key, made with another genesis key: the
		// same error, the same fix.
		other := newGuide(t, blocks, used)
		other.build(other.vars["LOG"], 3, fs...)
		foreign, err := os.ReadFile(filepath.Join(other.vars["LOG"], "epoch.key"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(log, "epoch.key"), string(foreign), 0o600)
		g.refuses(log, audit.ErrEpochKeyMismatch, []string{"but the configured key is"}, fs...)
		g.follow("epoch-key")
		g.recovered(log, n, 1, fs...)
	})
	t.Run("integrity.ErrKeyFileMode", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		fs := audit.WithForwardSecurity(time.Hour)
		g.build(log, n, fs)
		key := filepath.Join(log, "epoch.key")
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		g.refuses(log, integrity.ErrKeyFileMode, []string{"chmod 600 " + key}, fs)
		g.verify(log, 0)
		g.follow("key-mode")
		g.recovered(log, n, 1, fs)
	})
	t.Run("audit.ErrKeyFilePermissions", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		key := g.vars["KEY"]
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		g.refuses(log, audit.ErrKeyFilePermissions, []string{"chmod 600 " + key}, audit.WithSigningKeyFile(key))
		g.follow("signing-key-mode")
		g.recovered(log, n, 1, audit.WithSigningKeyFile(key))
	})
	keyring := func(path string) []audit.Option {
		return []audit.Option{audit.WithKeyring(path, nil), audit.WithEncryption("Role")}
	}
	t.Run("protect.ErrKeyring/permissions", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.vars["KEYRING"] = filepath.Join(t.TempDir(), "audit.keyring")
		kr := keyring(g.vars["KEYRING"])
		g.build(log, n, kr...)
		if err := os.Chmod(g.vars["KEYRING"], 0o644); err != nil {
			t.Fatal(err)
		}
		g.refuses(log, protect.ErrKeyring, []string{"chmod 600"}, kr...)
		g.follow("keyring-mode")
		g.recovered(log, n, 1, kr...)
	})
	t.Run("protect.ErrKeyring/damaged", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.vars["KEYRING"] = filepath.Join(t.TempDir(), "audit.keyring")
		g.vars["KEYRING_BACKUP"] = filepath.Join(t.TempDir(), "audit.keyring.backup")
		kr := keyring(g.vars["KEYRING"])
		g.build(log, n, kr...)
		data, err := os.ReadFile(g.vars["KEYRING"])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, g.vars["KEYRING_BACKUP"], string(data), 0o600)
		data[len(data)/2] ^= 0x40
		writeFile(t, g.vars["KEYRING"], string(data), 0o600)
		g.refuses(log, protect.ErrKeyring, []string{g.vars["KEYRING"]}, kr...)
		g.verify(log, 0)
		g.follow("keyring-damaged")
		g.recovered(log, n, 1, kr...)
	})
	t.Run("audit.ErrKeyringInLog", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		// A keyring made elsewhere, then moved into the log directory.
		inLog := filepath.Join(log, "audit.keyring")
		elsewhere := filepath.Join(t.TempDir(), "audit.keyring")
		g.build(filepath.Join(t.TempDir(), "other"), 1, keyring(elsewhere)...)
		if err := os.Rename(elsewhere, inLog); err != nil {
			t.Fatal(err)
		}
		g.refuses(log, audit.ErrKeyringInLog, nil, keyring(inLog)...)
		g.vars["KEYRING"] = filepath.Join(t.TempDir(), "audit.keyring")
		g.follow("keyring-in-log")
		g.recovered(log, n, 1, keyring(g.vars["KEYRING"])...)
	})
	t.Run("integrity.ErrCheckpointLogCorrupt", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		copyDir(t, log, g.vars["MIRROR"])
		cps := filepath.Join(log, integrity.CheckpointsFile)
		data, err := os.ReadFile(cps)
		if err != nil {
			t.Fatal(err)
		}
		flip(t, cps, len(data)/2)
		g.refuses(log, integrity.ErrCheckpointLogCorrupt, nil)
		g.verifySays(log, 1, "recover --mirror")
		g.follow("checkpoints-mirror")
		g.recovered(g.vars["OUT"], n, 1)
	})
	t.Run("audit.ErrAccessLog", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n, audit.WithAccessLog())
		// A read, recorded in the access log and anchored in the log.
		if _, err := audit.Verify(context.Background(), log, audit.WithTrustedKeys(g.vkey)); err != nil {
			t.Fatal(err)
		}
		if err := g.open(log, audit.WithAccessLog()); err != nil {
			t.Fatal(err)
		}
		copyDir(t, log, g.vars["MIRROR"])
		want := len(events(t, log)) // the anchors are events too
		if err := os.RemoveAll(filepath.Join(log, audit.AccessDirName)); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Verify(context.Background(), log, audit.WithTrustedKeys(g.vkey)); !errors.Is(err, audit.ErrAccessLog) || !errors.Is(err, audit.ErrIntegrity) {
			t.Fatalf("Verify: %v, want ErrAccessLog", err)
		}
		g.verify(log, 1)
		g.follow("access-log", 0, 0, 0)
		g.recovered(log, want, 1, audit.WithAccessLog())
	})
	t.Run("ENOSPC at open", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		ffs := vfs.NewFaultFS(vfs.OS())
		ffs.SetWriteBudget(0)
		err := g.open(log, audit.WithFileSystem(ffs))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("New on a full disk: %v, want ENOSPC", err)
		}
		t.Logf("New: %v", err)
		ffs.SetWriteBudget(-1) // space freed
		g.recovered(log, n, 1, audit.WithFileSystem(ffs))
	})
	t.Run("audit.ErrInvalidOption", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		g.refuses(g.vars["LOG"], audit.ErrInvalidOption, []string{"WithShippingQuorum(2)"}, audit.WithShippingQuorum(2))
	})
	t.Run("verify untrusted-key", func(t *testing.T) {
		g := newGuide(t, blocks, used)
		log := g.vars["LOG"]
		g.build(log, n)
		_, other, err := integrity.GenerateKey("recovery-guide.test/other")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, g.vars["PUB"], other+"\n", 0o644)
		g.verifySays(log, 2, string(integrity.CodeUntrustedKey))
		g.follow("untrusted-key", 0, 0)
		g.recovered(log, n, 1)
	})

	if t.Failed() || strings.Contains(flag.Lookup("test.run").Value.String(), "/") {
		return // the check below needs every walk
	}
	var missed []string
	for name := range blocks {
		if !used[name] {
			missed = append(missed, name)
		}
	}
	slices.Sort(missed)
	if len(missed) > 0 {
		t.Errorf("%s: blocks no walk follows (add a subtest): %v", guidePath, missed)
	}
}
