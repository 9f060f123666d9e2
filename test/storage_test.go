package test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminListenLine finds the admin listener's address in a node's log.
var adminListenLine = regexp.MustCompile(`admin listening.*"admin-listen": "([^"]+)"`)

// adminBase returns http://host:port of p's admin listener, as its log
// names it (the tests start nodes with admin.listen on port 0).
func adminBase(t *testing.T, p *sluiceProcess) string {
	t.Helper()
	var addr string
	eventually(t, "the admin listener's address in the log", func() bool {
		m := adminListenLine.FindAllStringSubmatch(p.Output(), -1)
		if len(m) == 0 {
			return false
		}
		addr = m[len(m)-1][1]
		return true
	})
	return "http://" + addr
}

// commitOffset commits offset 1 of topic's partition 0 for group as an
// admin commit (no member, generation -1) on the single node at addr, once
// FindCoordinator names it, and returns the partition's error code.
func commitOffset(t *testing.T, addr, group, topic string) int16 {
	t.Helper()
	eventually(t, "FindCoordinator "+group, func() bool {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.SetVersion(3)
		req.CoordinatorKey = group
		return dialRaw(t, addr).mustRoundTrip(req).(*kmsg.FindCoordinatorResponse).ErrorCode == 0
	})
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(7)
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, addr).mustRoundTrip(req).(*kmsg.OffsetCommitResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestStorageMinFreeBytes: a node whose data dir has less free space than
// storage.min.free.bytes answers produce with KAFKA_STORAGE_ERROR (with a
// message that says why) and group commits with NOT_COORDINATOR, and says
// so in /readyz and /metrics; a franz-go
// producer with retries keeps its records buffered, none failed; once
// the threshold is lowered with IncrementalAlterConfigs (no restart)
// every record lands exactly once, in order.
func TestStorageMinFreeBytes(t *testing.T) {
	const topic = "disk-low"
	dir := t.TempDir()
	// Far above what the disk has free, whatever else writes meanwhile.
	threshold := freeBytes(t, dir) + 1<<40
	adminAddr := freeAddr(t)
	p := startProcess(t, dir, "--admin-listen", adminAddr, "--storage-min-free-bytes", fmt.Sprint(threshold))
	base := "http://" + adminAddr

	cl := newProducer(t, []string{p.Addr}, topic)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	sp, _ := produceTo(t, p.Addr, topic, 9, -1)
	code, msg := sp.ErrorCode, ""
	if sp.ErrorMessage != nil {
		msg = *sp.ErrorMessage
	}
	if code != kerr.KafkaStorageError.Code || !strings.Contains(msg, "below storage.min.free.bytes "+fmt.Sprint(threshold)) {
		t.Fatalf("produce below the threshold: code %d %q, want KAFKA_STORAGE_ERROR naming storage.min.free.bytes", code, msg)
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-] storage: disk "+dir) {
		t.Fatalf("/readyz below the threshold: %d\n%s", code, body)
	}
	if v := scrapeMetrics(t, base).value(t, "sluice_storage_space_low", "dir", dir); v != 1 {
		t.Fatalf("sluice_storage_space_low = %v, want 1", v)
	}
	// A group commit is an append too: refused, with the code Kafka's
	// coordinator gives a storage error (clients retry it).
	if code := commitOffset(t, p.Addr, "disk-low-g", topic); code != kerr.NotCoordinator.Code {
		t.Fatalf("offset commit below the threshold: %v, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	if !strings.Contains(p.Output(), "disk has too little free space") {
		t.Fatalf("no log line says the disk is too full:\n%s", p.Output())
	}

	// A producer with retries: its records stay buffered while the broker
	// refuses them. Wait until the broker has refused it several times
	// (observable in /metrics), then check that nothing failed.
	l := startLoad(t, cl, "r", 100)
	eventually(t, "the producer retried against KAFKA_STORAGE_ERROR", func() bool {
		s := scrapeMetrics(t, base)
		return s[series("sluice_request_errors_total", "api", "Produce", "code", "KAFKA_STORAGE_ERROR")] >= 5
	})
	if acked, failed := l.counts(); acked != 0 || failed != 0 {
		t.Fatalf("below the threshold: %d records acknowledged, %d failed; want all buffered", acked, failed)
	}

	// Lower the threshold at run time: the node accepts appends again.
	set := func(v string) *string { return &v }
	resp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "storage.min.free.bytes", Value: set("1024")}}, 1)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		t.Fatalf("lower storage.min.free.bytes: %v", err)
	}
	l.waitAcked(500)
	if code := commitOffset(t, p.Addr, "disk-low-g", topic); code != 0 {
		t.Fatalf("offset commit once space suffices: %v", kerr.ErrorForCode(code))
	}
	acked, failed := l.stop()
	if len(failed) != 0 {
		for v, err := range failed {
			t.Fatalf("%d records failed, e.g. %s: %v", len(failed), v, err)
		}
	}
	if n := checkHistory(t, []string{p.Addr}, topic, acked); n < len(acked) {
		t.Fatalf("log holds %d records, %d acknowledged", n, len(acked))
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz once space suffices: %d\n%s", code, body)
	}
	if strings.Contains(p.Output(), "UNKNOWN_SERVER_ERROR") || scrapeMetrics(t, base)[series("sluice_request_errors_total", "api", "Produce", "code", "UNKNOWN_SERVER_ERROR")] != 0 {
		t.Fatal("a produce was answered UNKNOWN_SERVER_ERROR")
	}
}

// TestStorageFailedDiskLeaderStepsDown: three nodes, one partition on all
// three, a producer writing without pause; the leader's disk starts
// failing every write and fsync of the partition's files (injected
// through debug.fault.injection's /debug/fault). The leader answers
// KAFKA_STORAGE_ERROR, steps down and says why (log, /readyz, /metrics);
// another node leads, the producer goes on, and no acknowledged record is
// lost or duplicated. Restarted, the node catches up.
func TestStorageFailedDiskLeaderStepsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	const topic = "disk-fail"
	// Default Raft timeouts (10 s): the failed leader tells its followers
	// it left the group, and they elect at once, well within eventually's
	// bound, rather than after a heartbeat timeout of silence.
	procs, _ := startMetadataCluster(t, 3, "--debug-fault-injection")
	createReplicatedTopic(t, procs, topic)
	waitInSync(t, procs, topic)
	cl := newProducer(t, addrsOf(procs...), topic)
	l := startLoad(t, cl, "f", 64)
	l.waitAcked(300)

	leader, _, _ := partitionState(t, procs[0].Addr, topic)
	if leader < 1 {
		t.Fatalf("no leader of %s", topic)
	}
	failed := procs[leader-1]
	base := adminBase(t, failed)
	req, err := http.NewRequest(http.MethodPost, base+"/debug/fault?path=/topics/"+topic+"-0/&ops=write,sync&errno=EIO", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /debug/fault: %s", resp.Status)
	}
	before, _ := l.counts()
	t.Logf("node %d (the leader) fails writes and fsyncs of %s-0 after %d acknowledgements", leader, topic, before)

	var others []*sluiceProcess
	for _, p := range procs {
		if p != failed {
			others = append(others, p)
		}
	}
	stepDownBegan := time.Now()
	eventually(t, "another node leads "+topic, func() bool {
		for _, p := range others {
			if l, _, _ := partitionState(t, p.Addr, topic); l < 1 || procs[l-1] == failed {
				return false
			}
		}
		return true
	})
	// Well under Raft's heartbeat timeout (10 s): without the announcement
	// the survivors waited 10-20 s.
	if took := time.Since(stepDownBegan); took > 6*time.Second {
		t.Fatalf("another node led %s only %s after its leader's storage failed, want within a few seconds", topic, took)
	}
	t.Logf("another node leads %s %s after its leader's storage failed", topic, time.Since(stepDownBegan))
	l.waitAcked(before + 500)

	eventually(t, "the failed node reports the failed replica", func() bool {
		code, body := httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "replica "+topic+"-0 failed") && strings.Contains(body, "input/output error")
	})
	s := scrapeMetrics(t, base)
	if v := s.value(t, "sluice_storage_replica_failed", "topic", topic, "partition", "0"); v != 1 {
		t.Fatalf("sluice_storage_replica_failed = %v, want 1", v)
	}
	if v := s[series("sluice_request_errors_total", "api", "Produce", "code", "KAFKA_STORAGE_ERROR")]; v < 1 {
		t.Fatalf("the failed leader answered KAFKA_STORAGE_ERROR %v times, want at least once", v)
	}
	if v := s[series("sluice_request_errors_total", "api", "Produce", "code", "UNKNOWN_SERVER_ERROR")]; v != 0 {
		t.Fatalf("the failed leader answered UNKNOWN_SERVER_ERROR %v times", v)
	}
	out := failed.Output()
	if !strings.Contains(out, "partition storage failed") || !strings.Contains(out, "/topics/"+topic+"-0/") {
		t.Fatalf("the failed node's log does not say which file failed:\n%s", out)
	}

	// The failed node stays out: it does not lead again.
	l.waitAcked(before + 1000)
	acked, lost := l.stop()
	if len(lost) != 0 {
		for v, err := range lost {
			t.Fatalf("%d records failed (retries were on), e.g. %s: %v", len(lost), v, err)
		}
	}
	for _, p := range others {
		if l, _, _ := partitionState(t, p.Addr, topic); l == leader {
			t.Fatalf("node %d leads %s again after its disk failed", leader, topic)
		}
	}
	if n := checkHistory(t, addrsOf(others...), topic, acked); n < len(acked) {
		t.Fatalf("log holds %d records, %d acknowledged", n, len(acked))
	}

	// A restart (with a disk that answers again) brings the replica back:
	// it recovers from what its files hold and catches up from the
	// leader. Its shutdown may report the failed disk once more.
	if err := failed.Terminate(); err != nil {
		t.Logf("node %d exited with %v", leader, err)
	}
	failed.Restart()
	waitInSync(t, procs, topic)
	waitIdenticalLogs(t, procs, topic, 1)
}
