package log

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestAdvanceStartOffset(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/d", testConfig(), Options{})
	appendN(t, l, 100, 2, 100)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	inside := segs[2].BaseOffset + 1
	if err := l.AdvanceStartOffset(201); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("AdvanceStartOffset past the end: %v", err)
	}
	if err := l.AdvanceStartOffset(inside); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		t.Helper()
		if l.StartOffset() != inside || len(l.Segments()) != len(segs)-2 {
			t.Fatalf("start %d with %d segments, want %d with %d", l.StartOffset(), len(l.Segments()), inside, len(segs)-2)
		}
		if _, err := l.Read(nil, ReadRequest{Offset: inside - 1, MaxOffset: 200, MaxBytes: 1 << 20}); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("Read below the start: %v", err)
		}
		if b, err := l.Read(nil, ReadRequest{Offset: inside, MaxOffset: 200, MaxBytes: 1 << 20}); err != nil || len(b) == 0 {
			t.Fatalf("Read at the start: %d bytes, %v", len(b), err)
		}
	}
	check(l)
	crashed := fs.CrashClone()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	check(openLog(t, fs, "/d", testConfig(), Options{}))
	check(openLog(t, crashed, "/d", testConfig(), Options{}))
}

// TestStartOffsetAboveRecoveredEnd: a power cut loses unsynced batches
// below a synced log start offset; the log restarts empty at it.
func TestStartOffsetAboveRecoveredEnd(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/d", testConfig(), Options{})
	appendN(t, l, 10, 2, 100)
	if err := l.AdvanceStartOffset(15); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, fs.CrashClone(), "/d", testConfig(), Options{})
	if l2.StartOffset() != 15 || l2.NextOffset() != 15 || len(l2.Segments()) != 1 {
		t.Fatalf("offsets [%d, %d) in %d segments, want an empty log at 15", l2.StartOffset(), l2.NextOffset(), len(l2.Segments()))
	}
	if err := l2.Append(simpleBatch(15, 2, 10)); err != nil {
		t.Fatal(err)
	}
}

// TestRestartAt: the log restarts empty at an offset above its end, takes
// appends there, and keeps that state across a clean reopen and a kill -9
// right after; an offset at or below the end is refused.
func TestRestartAt(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/d", testConfig(), Options{})
	appendN(t, l, 60, 2, 100) // several segments
	if err := l.RestartAt(120); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("RestartAt(log end): %v, want ErrOffsetOutOfRange", err)
	}
	if err := l.RestartAt(500); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log, want [][]byte, next int64) {
		t.Helper()
		if l.StartOffset() != 500 || l.NextOffset() != next {
			t.Fatalf("log [%d, %d), want [500, %d)", l.StartOffset(), l.NextOffset(), next)
		}
		if got := readAllBatches(t, l); !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("read %d batches, want %d", len(got), len(want))
		}
		if segs := l.Segments(); len(segs) == 0 || segs[0].BaseOffset != 500 {
			t.Fatalf("segments %+v, want the first at 500", segs)
		}
	}
	check(openLog(t, fs.CrashClone(), "/d", testConfig(), Options{}), nil, 500)
	more := appendN(t, l, 5, 2, 100)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	check(l, more, 510)
	check(openLog(t, fs.CrashClone(), "/d", testConfig(), Options{}), more, 510)
	l.Close()
	check(openLog(t, fs, "/d", testConfig(), Options{}), more, 510)
}
