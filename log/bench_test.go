package log

import (
	"sync"
	"sync/atomic"
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

// BenchmarkAppendDurable appends 1 KiB batches to 8 logs on the OS
// filesystem from parallel producers that each wait for their batch to be
// synced by a shared Flusher (acks=all): group commit at work. It reports
// the appends per fdatasync.
func BenchmarkAppendDurable(b *testing.B) {
	f := NewFlusher(FlushConfig{}, nil)
	b.Cleanup(func() { f.Close(b.Context()) })
	type partition struct {
		writer  sync.Mutex
		log     *Log
		watcher *syncWatcher
	}
	parts := make([]*partition, 8)
	for i := range parts {
		w := newSyncWatcher()
		l, err := Open(b.TempDir(), DefaultConfig(), Options{Logger: zap.NewNop(), Flusher: f, OnSynced: w.onSynced})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		parts[i] = &partition{log: l, watcher: w}
	}
	var next atomic.Int64
	b.SetBytes(1024)
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		batch := simpleBatch(0, 1, 1024-BatchHeaderSize-10)
		for pb.Next() {
			p := parts[next.Add(1)%int64(len(parts))]
			p.writer.Lock()
			SetBaseOffset(batch, p.log.NextOffset())
			err := p.log.Append(batch)
			end := p.log.NextOffset()
			p.writer.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
			p.watcher.waitFor(end)
		}
	})
	if st := f.Stats(); st.Syncs > 0 && st.Rounds > 0 {
		b.ReportMetric(float64(b.N)/float64(st.Syncs), "appends/sync")
		b.ReportMetric(float64(b.N)/float64(st.Rounds), "appends/round")
	}
}

// sealedBenchLog returns a synced log of 16 MiB of 1 KiB batches in 1 MiB
// segments, so that nearly every read lands in a sealed segment.
func sealedBenchLog(b *testing.B) *Log {
	b.Helper()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 1 << 20
	l, err := Open(b.TempDir(), cfg, Options{Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	batch := simpleBatch(0, 1, 1024-BatchHeaderSize-10)
	for range 16 << 10 {
		SetBaseOffset(batch, l.NextOffset())
		if err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkReadSealed is BenchmarkRead over 1 MiB segments: reads of
// sealed segments at random-ish offsets, some crossing a segment end.
func BenchmarkReadSealed(b *testing.B) {
	l := sealedBenchLog(b)
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

// BenchmarkReplaySealed reads the whole 16 MiB log of 1 MiB segments from
// the start in 256 KiB fetches, as a consumer replaying a topic does.
func BenchmarkReplaySealed(b *testing.B) {
	l := sealedBenchLog(b)
	next := l.NextOffset()
	buf := make([]byte, 0, 512<<10)
	b.SetBytes(16 << 20)
	b.ReportAllocs()
	for b.Loop() {
		for offset := int64(0); offset < next; {
			var err error
			buf, err = l.Read(buf[:0], ReadRequest{Offset: offset, MaxOffset: next, MaxBytes: 256 << 10, MinOneBatch: true})
			if err != nil {
				b.Fatal(err)
			}
			if len(buf) == 0 {
				b.Fatalf("nothing read at offset %d", offset)
			}
			for pos := 0; pos < len(buf); {
				h, err := ParseBatchHeader(buf[pos:])
				if err != nil {
					b.Fatal(err)
				}
				offset = h.NextOffset()
				pos += h.Size()
			}
		}
	}
}
