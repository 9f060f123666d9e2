package raftlog

import (
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
)

// testBatch builds an uncompressed v2 batch of n records whose values
// name tag, with base offset 0 and epoch 0 (the store stamps both).
func testBatch(n int, tag string) []byte {
	rb := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(n - 1),
		FirstTimestamp:  1000,
		MaxTimestamp:    1000,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(n),
	}
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Key: nil, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // what follows a 1-byte length of 0
		records = r.AppendTo(records)
	}
	rb.Records = records
	b := rb.AppendTo(nil)
	rb.Length = int32(len(b) - 12)
	b = rb.AppendTo(nil)
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	rb.CRC = int32(crc)
	return rb.AppendTo(nil)
}

// openLog opens a segment log in dir on fs with small segments.
func openLog(t testing.TB, fs log.FS, dir string) *log.Log {
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.SegmentBytes = 16 << 10
	l, err := log.Open(dir, cfg, log.Options{FS: fs})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	return l
}

// entry kinds for scripted tests.
func cmd(index, term uint64, n int, tag string) *raft.Log {
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: testBatch(n, tag)}
}

func noop(index, term uint64) *raft.Log {
	return &raft.Log{Index: index, Term: term, Type: raft.LogNoop}
}

func conf(index, term uint64, data string) *raft.Log {
	return &raft.Log{Index: index, Term: term, Type: raft.LogConfiguration, Data: []byte(data)}
}

func adminCmd(index, term uint64, data string) *raft.Log {
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: []byte(data), Extensions: []byte{1}}
}
