package log

import (
	"testing"

	"go.uber.org/zap"
)

func benchLog(b *testing.B) *Log {
	b.Helper()
	l, err := Open(b.TempDir(), DefaultConfig(), Options{Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkAppend appends 1 KiB batches to a log on the OS filesystem with
// no flusher (page cache speed: what Append itself costs).
func BenchmarkAppend(b *testing.B) {
	l := benchLog(b)
	batch := simpleBatch(0, 1, 1024-BatchHeaderSize-10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		SetBaseOffset(batch, l.NextOffset())
		if err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads 64 KiB at random-ish offsets from a 16 MiB log of
// 1 KiB batches into a reused buffer.
func BenchmarkRead(b *testing.B) {
	l := benchLog(b)
	batch := simpleBatch(0, 1, 1024-BatchHeaderSize-10)
	for range 16 << 10 {
		SetBaseOffset(batch, l.NextOffset())
		if err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	next := l.NextOffset()
	buf := make([]byte, 0, 128<<10)
	b.SetBytes(64 << 10)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i = (i*7919 + 13) % next
		var err error
		buf, err = l.Read(buf[:0], ReadRequest{Offset: i, MaxOffset: next, MaxBytes: 64 << 10, MinOneBatch: true})
		if err != nil {
			b.Fatal(err)
		}
	}
}
