package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	audit "github.com/willibrandon/mtlog-audit"
	"github.com/willibrandon/mtlog-audit/integrity"
	"github.com/willibrandon/mtlog-audit/vfs"
)

// liveChildEnv makes the test binary a writer of a live log (liveChild).
const liveChildEnv = "MTLOG_AUDIT_LIVE_CHILD"

// liveWriterOptions are the options of a live test log's sink: small
// segments (a rotation every few dozen events), and with a signing key a
// checkpoint every 3 records or 2ms.
func liveWriterOptions(dir, skey string) []audit.Option {
	opts := []audit.Option{audit.WithWAL(dir, audit.WithSegmentSize(24<<10))}
	if skey != "" {
		opts = append(opts, audit.WithSigningKey(skey), audit.WithCheckpoints(3, 2*time.Millisecond, time.Hour))
	}
	return opts
}

// liveWrite writes up to max events from 4 goroutines through s until ctx
// is done, calling first after the first acknowledgement. It returns the
// first write error.
func liveWrite(ctx context.Context, s *audit.Sink, max int, first func()) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		mu    sync.Mutex
		n     int
		wrErr error
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				mu.Lock()
				n++
				stop := n > max
				mu.Unlock()
				if stop {
					return
				}
				if _, err := s.Write(ctx, killEvent(g, i)); err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						wrErr = err
						mu.Unlock()
					}
					return
				}
				once.Do(first)
			}
		}()
	}
	wg.Wait()
	return wrErr
}

// liveChild writes a live log in dir (signed with the key in the
// environment, if any) and says "ready" on stdout after the first
// acknowledgement and "done" after the last; it then keeps the log open
// until it is killed.
func liveChild(dir string) {
	s, err := audit.New(liveWriterOptions(dir, os.Getenv(liveChildEnv+"_KEY"))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "live child:", err)
		os.Exit(3)
	}
	max, _ := strconv.Atoi(os.Getenv(liveChildEnv + "_MAX"))
	if err := liveWrite(context.Background(), s, max, func() { fmt.Println("ready") }); err != nil {
		fmt.Fprintln(os.Stderr, "live child: write:", err)
		os.Exit(4)
	}
	fmt.Println("done")
	select {}
}

// TestReadLiveLog reads a log over and over while a sink writes it, in
// another process and in this one, signed and unsigned, with segments
// rotating and checkpoints and tree nodes appended during the reads:
// audit.Verify (with the public key and without) and audit.Replay must
// never report a problem, and each read must see at least as much as the
// one before (a prefix of the log that only grows).
func TestReadLiveLog(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a log while it is written, in a child process")
	}
	const iterations, maxEvents = 40, 20000
	for _, tc := range []struct {
		name          string
		child, signed bool
	}{
		{"child/signed", true, true},
		{"child/unsigned", true, false},
		{"goroutine/signed", false, true},
		{"goroutine/unsigned", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			var skey, vkey string
			if tc.signed {
				var err error
				if skey, vkey, err = integrity.GenerateKey("live.test"); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan struct{}) // closed when the writer has written its last event
			if tc.child {
				startLiveChild(t, dir, skey, maxEvents, done)
			} else {
				startLiveGoroutine(t, dir, skey, maxEvents, done)
			}
			ctx := context.Background()
			var prev uint64
			for i := 0; i < iterations; i++ {
				select {
				case <-done:
					t.Logf("the writer finished after %d reads", i)
					return
				default:
				}
				var opts []audit.VerifyOption
				if tc.signed {
					opts = append(opts, audit.WithTrustedKeys(vkey))
				}
				rep, err := audit.Verify(ctx, dir, opts...)
				if err != nil || !rep.OK {
					t.Fatalf("read %d: Verify of the live log: %v (report %+v)", i, err, rep)
				}
				if rep.Records < prev {
					t.Fatalf("read %d: Verify read %d records, fewer than the %d of the read before", i, rep.Records, prev)
				}
				prev = rep.Records
				if tc.signed {
					if rep, err := audit.Verify(ctx, dir); err != nil || !rep.OK {
						t.Fatalf("read %d: Verify without a key: %v (report %+v)", i, err, rep)
					}
				}
				n := 0
				for _, err := range audit.Replay(ctx, dir, time.Time{}, time.Time{}) {
					if err != nil {
						t.Fatalf("read %d: Replay of the live log after %d events: %v", i, n, err)
					}
					n++
				}
			}
		})
	}
}

// startLiveChild starts a child process that writes the log in dir and
// returns once it acknowledged its first event; done is closed when it
// has written all; the child is killed when the test ends.
func startLiveChild(t *testing.T, dir, skey string, max int, done chan struct{}) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), liveChildEnv+"="+dir, liveChildEnv+"_KEY="+skey, fmt.Sprintf("%s_MAX=%d", liveChildEnv, max))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			switch sc.Text() {
			case "ready":
				ready <- true
			case "done":
				close(done)
			}
		}
		ready <- false
	}()
	if !<-ready {
		t.Fatal("the writer process ended before its first acknowledgement")
	}
}

// startLiveGoroutine is startLiveChild with the writer in this process.
func startLiveGoroutine(t *testing.T, dir, skey string, max int, done chan struct{}) {
	t.Helper()
	s, err := audit.New(liveWriterOptions(dir, skey)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	finished := make(chan error, 1)
	go func() {
		err := liveWrite(ctx, s, max, func() { once.Do(func() { close(ready) }) })
		close(done)
		once.Do(func() { close(ready) })
		finished <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-finished; err != nil {
			t.Errorf("writer: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	<-ready
}

// closeHookFS calls land once, when a reader closes the file at path (it
// has finished reading it).
type closeHookFS struct {
	vfs.FS
	path string
	land func()
	once sync.Once
}

func (c *closeHookFS) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil || name != c.path {
		return f, err
	}
	return &closeHookFile{File: f, fs: c}, nil
}

func (c *closeHookFS) LockHeld(name string) (bool, error) {
	held, _, err := vfs.LockHeld(c.FS, name)
	return held, err
}

type closeHookFile struct {
	vfs.File
	fs *closeHookFS
}

func (f *closeHookFile) Close() error {
	err := f.File.Close()
	f.fs.once.Do(f.fs.land)
	return err
}

// TestVerifyCheckpointsAfterRead: checkpoints and tree nodes appended after
// Verify read the records (a checkpoint naming a tree larger than what was
// read), and a checkpoint entry half appended, are not truncation or
// damage: Verify reads the checkpoints before the records, so every
// checkpoint it judges covers records it read, and a torn last entry of
// the checkpoints file is one being appended.
func TestVerifyCheckpointsAfterRead(t *testing.T) {
	skey, vkey, err := integrity.GenerateKey("live.test")
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	for _, keys := range [][]string{{vkey}, nil} {
		dir = filepath.Join(t.TempDir(), "audit")
		s, err := audit.New(append(liveWriterOptions(dir, skey), audit.WithCheckpoints(1, time.Millisecond, time.Hour))...)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 10 {
			if _, err := s.Write(context.Background(), killEvent(0, i)); err != nil {
				t.Fatal(err)
			}
		}
		names, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var last string
		for _, e := range names {
			if strings.HasSuffix(e.Name(), ".wal") {
				last = filepath.Join(dir, e.Name())
			}
		}
		fsys := &closeHookFS{FS: vfs.OS(), path: last, land: func() {
			for i := range 20 {
				if _, err := s.Write(context.Background(), killEvent(1, i)); err != nil {
					t.Error(err)
				}
			}
			// Close signs a checkpoint of every record and syncs tree.nodes.
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}}
		rep, err := audit.VerifyFS(context.Background(), fsys, dir, audit.WithTrustedKeys(keys...))
		if err != nil || !rep.OK {
			t.Fatalf("keys %v: Verify while checkpoints were appended after the read: %v (report %+v)", keys, err, rep)
		}
		if rep.Covered > rep.Records || rep.Records >= 30 {
			t.Fatalf("keys %v: %d records covered of %d read; want the records before the hook", keys, rep.Covered, rep.Records)
		}
	}
	// Half an entry at the end of the checkpoints file: being appended.
	cps := filepath.Join(dir, "checkpoints")
	data, err := os.ReadFile(cps)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cps, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:min(len(data), 8+60)]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rep, err := audit.Verify(context.Background(), dir, audit.WithTrustedKeys(vkey))
	if err != nil || !rep.OK {
		t.Fatalf("Verify with half a checkpoint entry at the end: %v (report %+v)", err, rep)
	}
}
