package idem

import (
	"context"
	"errors"
	"testing"
)

// writer returns a write function that counts its calls and returns n.
func writer(calls *int, n int, err error) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { *calls++; return n, err }
}

func TestRememberAndEvict(t *testing.T) {
	w := New[int](2)
	ctx := context.Background()
	calls := 0
	for i, k := range []string{"a", "b", "c"} {
		if r, err := w.Do(ctx, k, writer(&calls, i, nil)); r != i || err != nil {
			t.Fatalf("%s: %d %v", k, r, err)
		}
	}
	if r, err := w.Do(ctx, "b", writer(&calls, 9, nil)); r != 1 || err != nil || calls != 3 {
		t.Fatalf("b, in the window: %d %v after %d writes", r, err, calls)
	}
	if r, _ := w.Do(ctx, "a", writer(&calls, 9, nil)); r != 9 || calls != 4 {
		t.Fatalf("a, evicted: %d after %d writes", r, calls)
	}
}

func TestFailedWriteIsForgotten(t *testing.T) {
	w := New[int](4)
	ctx := context.Background()
	calls := 0
	boom := errors.New("boom")
	if _, err := w.Do(ctx, "k", writer(&calls, 0, boom)); !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	if r, err := w.Do(ctx, "k", writer(&calls, 7, nil)); r != 7 || err != nil || calls != 2 {
		t.Fatalf("retry: %d %v after %d writes", r, err, calls)
	}
}

// A write whose caller's context ends runs to its end; a waiter of the same
// key gets its result; a waiter whose context ends gets that error.
func TestWriteOutlivesItsContext(t *testing.T) {
	w := New[int](4)
	started, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := w.Do(ctx, "k", func(c context.Context) (int, error) {
			close(started)
			<-release
			return 5, c.Err()
		})
		res <- err
	}()
	<-started
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Do: %v", err)
	}
	if _, err := w.Do(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter with an ended context: %v", err)
	}
	close(release)
	calls := 0
	if r, err := w.Do(context.Background(), "k", writer(&calls, 9, nil)); r != 5 || err != nil || calls != 0 {
		t.Fatalf("retry: %d %v after %d writes", r, err, calls)
	}
	w.Close()
	if _, err := w.Do(ctx, "new", writer(&calls, 1, nil)); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("Do with an ended context: %v after %d writes", err, calls)
	}
}
