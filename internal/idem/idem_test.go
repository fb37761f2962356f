package idem

import (
	"context"
	"errors"
	"testing"
)

func TestRememberAndEvict(t *testing.T) {
	w := New[int](2)
	for i, k := range []string{"a", "b", "c"} {
		e, first := w.Begin(k)
		if !first {
			t.Fatalf("%s: not first", k)
		}
		w.Done(e, i, nil)
	}
	if e, first := w.Begin("b"); first {
		t.Fatal("b forgotten while in the window")
	} else if r, ok, err := e.Wait(context.Background()); r != 1 || !ok || err != nil {
		t.Fatalf("b: %d %v %v", r, ok, err)
	}
	if _, first := w.Begin("a"); !first {
		t.Fatal("a remembered beyond the window")
	}
	if n := w.Len(); n != 3 { // b, c remembered; a in flight
		t.Fatalf("Len %d, want 3", n)
	}
}

func TestFailedWriteIsForgotten(t *testing.T) {
	w := New[int](4)
	e, _ := w.Begin("k")
	waiter, first := w.Begin("k")
	if first || waiter != e {
		t.Fatal("second Begin of an in-flight key is first")
	}
	boom := errors.New("boom")
	w.Done(e, 0, boom)
	if _, ok, err := waiter.Wait(context.Background()); ok || err != nil || !errors.Is(waiter.Err(), boom) {
		t.Fatalf("waiter: ok %v, err %v, write error %v", ok, err, waiter.Err())
	}
	if _, first := w.Begin("k"); !first {
		t.Fatal("a failed key is remembered")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	w := New[int](1)
	e, _ := w.Begin("k")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := e.Wait(ctx); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: ok %v, err %v", ok, err)
	}
}
