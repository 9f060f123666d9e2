package replication

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
)

// fakeDisk is a Statfs whose answers the test sets.
type fakeDisk struct {
	free atomic.Uint64
	fail atomic.Bool
}

func (d *fakeDisk) statfs(string) (free, total uint64, err error) {
	if d.fail.Load() {
		return 0, 0, syscall.EIO
	}
	return d.free.Load(), 1 << 40, nil
}

func TestSpaceGuard(t *testing.T) {
	disk := &fakeDisk{}
	disk.free.Store(50)
	g := newSpaceGuard("/data", 100, time.Hour, disk.statfs, time.Now, zap.NewNop())
	steps := []struct {
		name    string
		free    uint64
		fail    bool
		minFree int64
		low     bool
	}{
		{"below the threshold", 50, false, 100, true},
		{"statfs fails: the last reading stands", 50, true, 100, true},
		{"space comes back", 150, false, 100, false},
		{"statfs fails while fine: still admitted", 10, true, 100, false},
		{"threshold above the free space", 150, false, 200, true},
		{"threshold 0 disables", 150, false, 0, false},
	}
	for _, st := range steps {
		disk.free.Store(st.free)
		disk.fail.Store(st.fail)
		g.minFree.Store(st.minFree)
		g.check()
		s := g.state.Load()
		if s.Low != st.low {
			t.Fatalf("%s: Low = %v, want %v (state %+v)", st.name, s.Low, st.low, s)
		}
		err := g.admit()
		if st.low != (err != nil) {
			t.Fatalf("%s: admit() = %v, want refusal %v", st.name, err, st.low)
		}
		if err != nil && (!errors.Is(err, kerr.KafkaStorageError) || !strings.Contains(err.Error(), "below storage.min.free.bytes")) {
			t.Fatalf("%s: refusal %q is not a KAFKA_STORAGE_ERROR naming storage.min.free.bytes", st.name, err)
		}
		if (s.CheckErr != nil) != st.fail {
			t.Fatalf("%s: CheckErr = %v", st.name, s.CheckErr)
		}
	}
}

// TestClusterRefusesAppendsBelowMinFree: below storage.min.free.bytes a
// produce is refused with KAFKA_STORAGE_ERROR and nothing is written;
// lowering the dynamic config, or space coming back, lets appends go on
// without a restart.
func TestClusterRefusesAppendsBelowMinFree(t *testing.T) {
	ctx := context.Background()
	disk := &fakeDisk{}
	disk.free.Store(1 << 20)
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.MinFreeBytes = 2 << 20
	cfg.SpaceCheckInterval = 10 * time.Millisecond
	c, err := Open(cfg, Options{Statfs: disk.statfs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	tp, _ := c.Topic("t")
	p := tp.Partition(0)
	if sp := c.Space(); !sp.Low || sp.FreeBytes != 1<<20 || sp.MinFreeBytes != 2<<20 {
		t.Fatalf("Space() = %+v, want low at 1 MiB free under 2 MiB", sp)
	}
	if _, err := p.Append(ctx, keyedBatch("k", "v", 1)); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append below the threshold: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if end := p.Offsets().LogEnd; end != 0 {
		t.Fatalf("log end %d after a refused append", end)
	}

	// The dynamic broker config lowers the threshold.
	str := func(s string) *string { return &s }
	if err := c.IncrementalAlterBrokerConfigs(ctx, "1", []configs.Op{
		{Name: "storage.min.free.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("1024")},
	}, false); err != nil {
		t.Fatal(err)
	}
	waitSpace(t, c, false)
	appendOK(t, p, 0)

	// The disk fills up, then space comes back.
	disk.free.Store(100)
	waitSpace(t, c, true)
	if _, err := p.Append(ctx, keyedBatch("k", "v", 1)); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append on a full disk: %v, want KAFKA_STORAGE_ERROR", err)
	}
	disk.free.Store(1 << 30)
	waitSpace(t, c, false)
	appendOK(t, p, 1)
}

// waitSpace polls, up to 10s, until the node's free-space state says
// Low is low.
func waitSpace(t *testing.T, c *Cluster, low bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Space().Low != low {
		if time.Now().After(deadline) {
			t.Fatalf("Space() = %+v, want Low %v", c.Space(), low)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendOK(t *testing.T, p *Partition, want int64) {
	t.Helper()
	a, err := p.Append(context.Background(), keyedBatch("k", "v", 1))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := a.Wait(context.Background()); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if a.BaseOffset != want {
		t.Fatalf("append at %d, want %d", a.BaseOffset, want)
	}
}
