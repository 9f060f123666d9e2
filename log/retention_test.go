package log

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestRemoveSegmentsBefore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		offset      func(segs []SegmentInfo) int64
		wantRemoved int
	}{
		{"nothing", func([]SegmentInfo) int64 { return 0 }, 0},
		{"inside first segment", func(s []SegmentInfo) int64 { return s[0].NextOffset - 1 }, 0},
		{"first segment", func(s []SegmentInfo) int64 { return s[0].NextOffset }, 1},
		{"three", func(s []SegmentInfo) int64 { return s[3].BaseOffset + 1 }, 3},
		{"never the active", func(s []SegmentInfo) int64 { return 1 << 40 }, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			l := openLog(t, fs, "/d", testConfig(), Options{})
			batches := appendN(t, l, 100, 2, 100)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			segs := l.Segments()
			want := tc.wantRemoved
			if want < 0 {
				want = len(segs) - 1
			}
			n, err := l.RemoveSegmentsBefore(tc.offset(segs))
			if err != nil || n != want {
				t.Fatalf("RemoveSegmentsBefore = %d, %v; want %d", n, err, want)
			}
			start := segs[want].BaseOffset
			check := func(l *Log) {
				t.Helper()
				if l.StartOffset() != start || l.NextOffset() != 200 {
					t.Fatalf("offsets [%d, %d), want [%d, 200)", l.StartOffset(), l.NextOffset(), start)
				}
				if got := readAllBatches(t, l); !slices.EqualFunc(got, batches[start/2:], bytes.Equal) {
					t.Fatalf("read %d batches, want %d", len(got), len(batches)-int(start/2))
				}
				if start > 0 {
					if _, err := l.Read(nil, ReadRequest{Offset: start - 1, MaxOffset: 200, MaxBytes: 10}); !errors.Is(err, ErrOffsetOutOfRange) {
						t.Fatalf("Read below start: %v", err)
					}
				}
				if len(l.Segments()) != len(segs)-want {
					t.Fatalf("%d segments left, want %d", len(l.Segments()), len(segs)-want)
				}
			}
			check(l)
			crashed := fs.CrashClone()
			l.Close()
			check(openLog(t, fs, "/d", testConfig(), Options{}))
			check(openLog(t, crashed, "/d", testConfig(), Options{}))
		})
	}
}
