package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

func TestAppendRead(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	r.SetLeaderEpoch(7)

	sizes := []int{1, 3, 2, 5}
	var want []byte
	next := int64(0)
	for i, n := range sizes {
		b := plain(n, int64(100*i)).build(t)
		res := mustAppend(t, r, b)
		if res.BaseOffset != next || res.LastOffset != next+int64(n)-1 || res.Duplicate || res.LogAppendTime != -1 || res.LogStartOffset != 0 {
			t.Fatalf("append %d: got %+v, want offsets [%d, %d]", i, res, next, next+int64(n)-1)
		}
		// b was stamped in place: base offset and epoch.
		h, err := log.VerifyBatch(b)
		if err != nil || h.BaseOffset != next || h.PartitionLeaderEpoch != 7 {
			t.Fatalf("append %d: stamped header %+v, %v", i, h, err)
		}
		want = append(want, b...)
		next += int64(n)
	}
	if o := r.Offsets(); o != (Offsets{LogStart: 0, HighWatermark: next, LastStable: next, LogEnd: next}) {
		t.Fatalf("Offsets = %+v, want all at %d", o, next)
	}

	got, _ := readAll(t, r)
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes differ from the %d appended", len(got), len(want))
	}

	tests := []struct {
		name      string
		req       ReadRequest
		wantFirst int64 // base offset of the first batch, -1 for none
		wantCount int
		wantErr   error
	}{
		{"from start", ReadRequest{Offset: 0, MaxBytes: 1 << 20}, 0, 4, nil},
		{"mid batch", ReadRequest{Offset: 2, MaxBytes: 1 << 20}, 1, 3, nil},
		{"at high watermark", ReadRequest{Offset: next, MaxBytes: 1 << 20}, -1, 0, nil},
		{"above high watermark", ReadRequest{Offset: next + 1, MaxBytes: 1 << 20}, -1, 0, kerr.OffsetOutOfRange},
		{"negative", ReadRequest{Offset: -1, MaxBytes: 1 << 20}, -1, 0, kerr.OffsetOutOfRange},
		{"min one batch", ReadRequest{Offset: 4, MaxBytes: 1, MinOneBatch: true}, 4, 1, nil},
		{"max bytes without min one batch", ReadRequest{Offset: 4, MaxBytes: 1}, -1, 0, nil},
		{"read committed", ReadRequest{Offset: 6, MaxBytes: 1 << 20, Isolation: ReadCommitted}, 6, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			res, err := r.Read(bytes.Clone(prefix), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if res.HighWatermark != next || res.LastStableOffset != next || res.LogStartOffset != 0 {
				t.Fatalf("offsets %+v", res)
			}
			if !bytes.HasPrefix(res.Records, prefix) {
				t.Fatalf("dst not extended: %q", res.Records)
			}
			var headers []log.BatchHeader
			if err := log.SplitBatches(res.Records[len(prefix):], func(_ []byte, h log.BatchHeader) error {
				headers = append(headers, h)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(headers) != tt.wantCount {
				t.Fatalf("got %d batches, want %d", len(headers), tt.wantCount)
			}
			if tt.wantCount > 0 && headers[0].BaseOffset != tt.wantFirst {
				t.Fatalf("first batch at %d, want %d", headers[0].BaseOffset, tt.wantFirst)
			}
		})
	}
}

func TestAppendMultiBatch(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	mustAppend(t, r, plain(2, 0).build(t))
	res := mustAppend(t, r, concat(t, plain(3, 0), plain(1, 0), plain(4, 0)))
	if res.BaseOffset != 2 || res.LastOffset != 9 {
		t.Fatalf("got %+v, want offsets [2, 9]", res)
	}
	_, headers := readAll(t, r)
	wantBases := []int64{0, 2, 5, 6}
	if len(headers) != len(wantBases) {
		t.Fatalf("%d batches, want %d", len(headers), len(wantBases))
	}
	for i, h := range headers {
		if h.BaseOffset != wantBases[i] {
			t.Errorf("batch %d at %d, want %d", i, h.BaseOffset, wantBases[i])
		}
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	good := func(t *testing.T) []byte { return plain(2, 0).build(t) }
	tests := []struct {
		name    string
		maxSize int
		request func(t *testing.T) []byte
		want    *kerr.Error
	}{
		{"empty request", 0, func(t *testing.T) []byte { return nil }, kerr.CorruptMessage},
		{"bad crc", 0, func(t *testing.T) []byte {
			b := good(t)
			b[len(b)-1] ^= 0xff
			return b
		}, kerr.CorruptMessage},
		{"bad magic", 0, func(t *testing.T) []byte {
			b := good(t)
			b[16] = 1
			return b
		}, kerr.CorruptMessage},
		{"short batch", 0, func(t *testing.T) []byte { b := good(t); return b[:len(b)-3] }, kerr.CorruptMessage},
		{"short header", 0, func(t *testing.T) []byte { return good(t)[:40] }, kerr.CorruptMessage},
		{"trailing garbage", 0, func(t *testing.T) []byte { return append(good(t), 1, 2, 3) }, kerr.CorruptMessage},
		{"record count mismatch", 0, func(t *testing.T) []byte {
			b := good(t)
			binary.BigEndian.PutUint32(b[57:], 3)
			fixCRC(b)
			return b
		}, kerr.CorruptMessage},
		{"last offset delta mismatch", 0, func(t *testing.T) []byte {
			b := good(t)
			binary.BigEndian.PutUint32(b[23:], 5)
			fixCRC(b)
			return b
		}, kerr.CorruptMessage},
		{"too large", 100, func(t *testing.T) []byte {
			tb := plain(1, 0)
			tb.records[0].value = make([]byte, 100)
			return tb.build(t)
		}, kerr.MessageTooLarge},
		{"request above segment bytes", 0, func(t *testing.T) []byte {
			big := plain(1, 0)
			big.records[0].value = make([]byte, 1500)
			return concat(t, big, big, big) // each fits, together they do not

		}, kerr.RecordListTooLarge},
		{"second batch too large", 200, func(t *testing.T) []byte {
			big := plain(1, 0)
			big.records[0].value = make([]byte, 200)
			return concat(t, plain(1, 0), big)
		}, kerr.MessageTooLarge},
		{"second batch corrupt", 0, func(t *testing.T) []byte {
			b := concat(t, plain(1, 0), plain(1, 0))
			b[len(b)-1] ^= 1
			return b
		}, kerr.CorruptMessage},
		{"control batch", 0, func(t *testing.T) []byte {
			tb := plain(1, 0)
			tb.attributes = 0x20
			return tb.build(t)
		}, kerr.InvalidRecord},
		{"transactional batch without a producer id", 0, func(t *testing.T) []byte {
			tb := plain(1, 0)
			tb.attributes = 0x10
			return tb.build(t)
		}, kerr.InvalidRecord},
		{"second batch out of sequence", 0, func(t *testing.T) []byte {
			return concat(t, idem(1, 0, 0, 2), idem(1, 0, 3, 1))
		}, kerr.OutOfOrderSequenceNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			if tt.maxSize > 0 {
				env.cfg.MaxMessageBytes = tt.maxSize
			}
			env.cfg.Log.SegmentBytes = 4096
			r := env.open(t)
			mustAppend(t, r, plain(1, 0).build(t))
			before, _ := readAll(t, r)
			offsets := r.Offsets()

			_, err := r.Append(tt.request(t))
			if err != tt.want { // the exact *kerr.Error, unwrapped
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			after, _ := readAll(t, r)
			if !bytes.Equal(before, after) || r.Offsets() != offsets {
				t.Fatalf("rejected append changed the log: offsets %+v -> %+v", offsets, r.Offsets())
			}
			if len(r.producers.entries) != 0 || len(r.producers.staged) != 0 {
				t.Fatalf("rejected append changed producer state: %+v %+v", r.producers.entries, r.producers.staged)
			}
			// The replica still works, and a rejected producer may start
			// afresh.
			mustAppend(t, r, idem(1, 0, 0, 1).build(t))
		})
	}
}
