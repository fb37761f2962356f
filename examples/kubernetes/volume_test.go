//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is the user the tests run the binaries as, to meet a directory
// owned by someone else.
const nobody = 65534

// TestBadVolume gives the example app and the mtlog-audit command the
// volumes a container can get wrong: none mounted, mounted read-only, and
// owned by another user. The app, which writes, must refuse each with an
// error that says what to do and exit non-zero; the command, which only
// reads, must refuse a missing or unreadable log with exit status 2 and
// still verify a log on a read-only volume (the verify CronJob mounts it
// so). It runs the binaries, not an image; the read-only and other-user
// cases need root (a bind mount, and a switch to user nobody).
func TestBadVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a read-only bind mount and running as another user")
	}
	// A directory every user can traverse, unlike t.TempDir's.
	root, err := os.MkdirTemp("", "badvolume")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(root, "app")
	cli := filepath.Join(root, "mtlog-audit")
	for bin, pkg := range map[string]string{app: ".", cli: "github.com/willibrandon/mtlog-audit/cmd/mtlog-audit"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	// A log to point at: made by the app itself, stopped at once.
	src := filepath.Join(root, "src")
	mkdir(t, src, 0o755)
	seed := exec.Command(app)
	seed.Env = []string{"AUDIT_WAL_DIR=" + filepath.Join(src, "wal"), "AUDIT_LISTEN=127.0.0.1:0"}
	out, err := seed.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 9)
	if _, err := out.Read(first); err != nil || string(first) != "listening" {
		t.Fatalf("the app did not start: %q %v", first, err)
	}
	if err := seed.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := seed.Wait(); err != nil {
		t.Fatalf("the app did not stop cleanly: %v", err)
	}

	// Read-only: the same directory bind-mounted read-only, as a volume
	// mounted with readOnly: true.
	ro := filepath.Join(root, "ro")
	mkdir(t, ro, 0o755)
	if err := syscall.Mount(src, ro, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(ro, 0) })
	if err := syscall.Mount(src, ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only here: %v", err)
	}

	// Another user's: root's log, 0700, seen by nobody.
	owned := filepath.Join(root, "owned")
	mkdir(t, owned, 0o755)
	if out, err := exec.Command("cp", "-a", filepath.Join(src, "wal"), owned).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Chmod(filepath.Join(owned, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		bin    string
		args   []string
		wal    string
		asUser bool
		code   int
		want   []string
	}{
		{"app/no volume", app, nil, filepath.Join(root, "missing", "wal"), false, 1,
			[]string{"the log's volume " + filepath.Join(root, "missing"), "no such file or directory", "mount a persistent volume there"}},
		{"app/read-only", app, nil, filepath.Join(ro, "wal"), false, 1,
			[]string{"read-only file system", "the log needs it read-write"}},
		{"app/read-only, new log", app, nil, filepath.Join(ro, "new"), false, 1,
			[]string{"read-only file system", "the log needs it read-write"}},
		{"app/another user's", app, nil, filepath.Join(owned, "wal"), true, 1,
			[]string{"permission denied", "user 65534 cannot write there", "fsGroup"}},
		{"cli/no volume", cli, []string{"verify", "--wal", filepath.Join(root, "missing", "wal")}, "", false, 2,
			[]string{"does not exist", "give the log's directory with --wal"}},
		{"cli/another user's", cli, []string{"verify", "--wal", filepath.Join(owned, "wal")}, "", true, 2,
			[]string{"cannot read " + filepath.Join(owned, "wal"), "permission denied"}},
		{"cli/read-only", cli, []string{"verify", "--wal", filepath.Join(ro, "wal")}, "", false, 0,
			[]string{"VERIFIED: " + filepath.Join(ro, "wal")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.bin, tc.args...)
			cmd.Env = []string{"AUDIT_WAL_DIR=" + tc.wal, "AUDIT_LISTEN=127.0.0.1:0"}
			if tc.asUser {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			}
			b, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			if code != tc.code {
				t.Fatalf("exit status %d, want %d:\n%s", code, tc.code, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "panic") || strings.Contains(got, "goroutine ") {
				t.Errorf("a stack trace:\n%s", got)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
