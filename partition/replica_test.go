package partition

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestClosedReplica(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	mustAppend(t, r, plain(2, 0).build(t))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Append": func() error { _, err := r.Append(plain(1, 0).build(t)); return err },
		"Read":   func() error { _, err := r.Read(nil, ReadRequest{Offset: 0, MaxBytes: 100}); return err },
		"OffsetForTimestamp": func() error {
			_, _, _, err := r.OffsetForTimestamp(0)
			return err
		},
		"MaxTimestamp":  func() error { _, _, _, err := r.MaxTimestamp(); return err },
		"WaitCommitted": func() error { return r.WaitCommitted(context.Background(), 2) },
		"Close":         r.Close,
		"Delete":        r.Delete,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	// Offsets still answer, from the last state.
	if o := r.Offsets(); o.LogEnd != 2 || o.HighWatermark != 2 {
		t.Errorf("Offsets after Close: %+v", o)
	}
}

func TestReopenKeepsDataAndEpochIsVolatile(t *testing.T) {
	env := newEnv(t)
	r := openQuiet(t, env)
	r.SetLeaderEpoch(3)
	mustAppend(t, r, plain(4, 0).build(t))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = env.open(t)
	if o := r.Offsets(); o != (Offsets{0, 4, 4, 4}) {
		t.Fatalf("offsets after reopen: %+v", o)
	}
	if r.LeaderEpoch() != 0 {
		t.Fatalf("leader epoch %d after reopen; replication sets it", r.LeaderEpoch())
	}
	_, headers := readAll(t, r)
	if len(headers) != 1 || headers[0].PartitionLeaderEpoch != 3 {
		t.Fatalf("headers after reopen: %+v", headers)
	}
}

func TestDelete(t *testing.T) {
	env := newEnv(t)
	r := openQuiet(t, env)
	mustAppend(t, r, plain(2, 0).build(t))
	if err := r.Delete(); err != nil {
		t.Fatal(err)
	}
	if names, err := env.fs.ReadDir(env.dir); err == nil && len(names) > 0 {
		t.Fatalf("directory still holds %v", names)
	}
	// A new replica in the same place starts empty.
	r = env.open(t)
	if o := r.Offsets(); o != (Offsets{}) {
		t.Fatalf("offsets of a recreated replica: %+v", o)
	}
}

func TestRejectionLoggedAtDebug(t *testing.T) {
	env := newEnv(t)
	core, logs := observer.New(zapcore.DebugLevel)
	env.opts.Logger = zap.New(core)
	r := env.open(t)
	if _, err := r.Append([]byte{1, 2, 3}); err != kerr.CorruptMessage {
		t.Fatalf("err = %v", err)
	}
	entries := logs.FilterMessage("append rejected").All()
	if len(entries) != 1 || entries[0].Level != zapcore.DebugLevel || entries[0].LoggerName != "partition" {
		t.Fatalf("log entries %+v", entries)
	}
	if fields := entries[0].ContextMap(); fields["topic"] != "t" || fields["partition"] != int32(0) || fields["error"] == nil {
		t.Fatalf("fields %v", fields)
	}
}
