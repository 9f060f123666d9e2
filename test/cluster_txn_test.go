package test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestClusterTxnLeaderKilled: a transactional partition replicated on
// three nodes (processes). Markers are replicated like any batch: after a
// kill -9 of the leader, the new leader has the same open transaction
// (its LSO and DescribeProducers say so), ends it when told, and a
// read_committed consumer sees exactly the committed records.
func TestClusterTxnLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "txn-failover"
	createReplicatedTopic(t, procs, topic)
	leader := func(except int32) int32 {
		t.Helper()
		var l int32
		eventually(t, "a leader of "+topic, func() bool {
			for _, p := range procs {
				if p.running() {
					l, _, _ = partitionState(t, p.Addr, topic)
					return l >= 1 && l != except && procs[l-1].running()
				}
			}
			return false
		})
		return l
	}
	first := leader(0)
	waitInSync(t, procs, topic)
	p := newTxnProducer(t, procs[first-1].Addr, topic)
	conn := dialRaw(t, procs[first-1].Addr)

	p.produce("aborted-1")
	if _, code := produceRaw(t, conn, topic, makeBatch(time.Now().UnixMilli(), batchRecord{Value: []byte("plain-1")}), ""); code != 0 {
		t.Fatalf("plain produce: %v", kerr.ErrorForCode(code))
	}
	if code := p.end(false, 1); code != 0 {
		t.Fatalf("abort: %v", kerr.ErrorForCode(code))
	}
	p.produce("committed-1")
	if code := p.end(true, 1); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	open := p.produce("after-failover-1")
	if lso := listLatest(t, conn, topic, 1); lso != open {
		t.Fatalf("read_committed latest %d, want the open transaction's %d", lso, open)
	}

	procs[first-1].Kill()
	second := leader(first)
	addr := procs[second-1].Addr
	conn = dialRaw(t, addr)
	p.conn = dialRaw(t, addr)
	// The new leader answers once it has applied its predecessor's
	// entries (a Raft barrier): until then ListOffsets may fail.
	eventually(t, "the new leader's read_committed latest offset", func() bool {
		lso, hwm := listLatestCode(conn, topic, 1), listLatestCode(conn, topic, 0)
		return lso == open && hwm == open+1
	})
	adm := newAdmin(t, addr)
	eventually(t, "DescribeProducers on the new leader", func() bool {
		ctx, cancel := contextTimeout(5 * time.Second)
		defer cancel()
		described, err := adm.DescribeProducers(ctx, kadmTopic(topic))
		if err != nil {
			return false
		}
		ap, err := lookupProducer(described, topic, p.id)
		return err == nil && ap.CurrentTxnStartOffset == open && ap.CoordinatorEpoch == 1
	})
	// A marker of the old coordinator epoch is still fenced.
	if code := p.end(true, 0); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("stale marker on the new leader: %v", kerr.ErrorForCode(code))
	}
	if code := p.end(true, 1); code != 0 {
		t.Fatalf("commit on the new leader: %v", kerr.ErrorForCode(code))
	}
	want := []string{"plain-1", "committed-1", "after-failover-1"}
	if got := readCommittedValues(t, addr, topic, "after-failover-1"); !slices.Equal(got, want) {
		t.Fatalf("read_committed values %q, want %q", got, want)
	}
}
