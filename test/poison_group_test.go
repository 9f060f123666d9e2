package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPoisonGroupDeadLetter runs a consumer of group G that crash-loops on
// the record at offset K (it commits K, then closes its client without
// committing each time it sees K, and starts again: a rebalance each
// time) while records after K wait. The broker must report the partition
// stuck (/metrics, GET /v1/groups/stuck, the STUCK column of `sluice
// group describe`, a warning in its log) within a bounded time. Then:
// `sluice group dead-letter` is refused while G has a member (exit 1),
// and once G is empty it copies record K to the dead-letter topic with its
// provenance headers and commits K+1 (exit 0); the stuck report clears and
// a new consumer of G reads every record after K.
func TestPoisonGroupDeadLetter(t *testing.T) {
	const (
		topic  = "poison-t"
		dlq    = "poison-t-dlq"
		group  = "poison-g"
		poison = int64(5)
		total  = 12
	)
	adminAddr := freeAddr(t)
	p := startProcess(t, t.TempDir(), "--admin-listen", adminAddr, "--group-initial-rebalance-delay-ms", "0",
		"--group-stuck-rebalances", "3", "--group-stuck-timeout-ms", "0")
	base := "http://" + adminAddr
	waitReady(t, base, p)
	createTopic(t, p.Addr, topic, 1)
	var records []*kgo.Record
	for i := range total {
		records = append(records, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
	}
	produceAll(t, newClient(t, p.Addr), records)

	// The crash loop.
	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		mu       sync.Mutex
		restarts int
		loopErr  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := consumeUntilPoison(p.Addr, group, topic, poison, stop); err != nil {
				mu.Lock()
				loopErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			restarts++
			mu.Unlock()
		}
	}()
	stopLoop := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopLoop()

	// Stuck within a bounded time: each restart is two generations (join,
	// then leave), so three rebalances take two restarts.
	deadline := time.Now().Add(testTimeout)
	for {
		s := scrapeMetrics(t, base)
		if s[series("sluice_group_stuck_partitions", "group", group)] == 1 {
			break
		}
		mu.Lock()
		err, n := loopErr, restarts
		mu.Unlock()
		if err != nil {
			t.Fatalf("consumer loop: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice_group_stuck_partitions{group=%q} not 1 within %s (%d restarts)", group, testTimeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	report := stuckReport(t, base)
	if len(report.Stuck) != 1 || report.Stuck[0].Topic != topic || report.Stuck[0].Partition != 0 ||
		report.Stuck[0].Offset != poison || report.Stuck[0].HighWatermark != total || report.Stuck[0].Reason != "rebalances" || report.Stuck[0].Rebalances < 3 {
		t.Fatalf("/v1/groups/stuck %+v, want %s-0 stuck at %d of %d for rebalances", report, topic, poison, total)
	}
	describe := describeStuck(t, p.Addr, adminAddr, group)
	if len(describe.Partitions) != 1 || describe.Partitions[0].Stuck == nil || !*describe.Partitions[0].Stuck || describe.Partitions[0].StuckReason != "rebalances" {
		t.Fatalf("group describe --format json partitions %+v, want stuck (rebalances)", describe.Partitions)
	}
	out := mustCLI(t, p.Addr, "", "group", "describe", group, "--admin", adminAddr)
	if row := tableRows(out)[topic]; len(row) < 7 || row[6] != "yes(rebalances)" {
		t.Fatalf("group describe: %s row %v, want STUCK yes(rebalances)\n%s", topic, row, out)
	}
	// Without a reachable admin listener describe still works.
	out = mustCLI(t, p.Addr, "", "group", "describe", group, "--admin", freeAddr(t))
	if row := tableRows(out)[topic]; len(row) < 7 || row[6] != "?" || !strings.Contains(out, "stuck state unknown") {
		t.Fatalf("group describe, admin unreachable: row %v, want STUCK ? and why\n%s", row, out)
	}
	if !strings.Contains(p.Output(), "consumer group stuck on a partition") || !strings.Contains(p.Output(), `"group": "`+group+`"`) {
		t.Errorf("broker log has no stuck warning naming group %s", group)
	}
	stopLoop()

	// A member present: refused, and nothing moves.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	member := newClient(t, p.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	adm := newAdmin(t, p.Addr)
	waitGroupState(t, adm, group, "Stable")
	deadLetterArgs := []string{"group", "dead-letter", group, "--topic", topic + ":0", "--offset", fmt.Sprint(poison), "--to", dlq}
	wantExit(t, "dead-letter with a member", runCLI(t, p.Addr, "", deadLetterArgs...), 1, "active members")
	member.Close()
	waitGroupState(t, adm, group, "Empty")

	// Below the committed offset: refused without --force.
	wantExit(t, "dead-letter below the committed offset", runCLI(t, p.Addr, "", "group", "dead-letter", group, "--topic", topic+":0", "--offset", "2", "--to", dlq), 1, "below")
	wantExit(t, "dead-letter without --to", runCLI(t, p.Addr, "", "group", "dead-letter", group, "--topic", topic+":0", "--offset", "2"), 2, "--to")

	// --dry-run lists the record and changes nothing.
	out = mustCLI(t, p.Addr, "", append(deadLetterArgs, "--dry-run")...)
	if !strings.Contains(out, "would create dead-letter topic "+dlq) || !strings.Contains(out, "dry run: nothing copied or committed") {
		t.Fatalf("dead-letter --dry-run output:\n%s", out)
	}
	if topics, err := adm.ListTopics(ctx, dlq); err != nil || topics.Has(dlq) {
		t.Fatalf("after --dry-run the dead-letter topic exists (%v) or listing failed: %v", topics.Has(dlq), err)
	}
	if c, err := adm.FetchOffsets(ctx, group); err != nil {
		t.Fatal(err)
	} else if o, _ := c.Lookup(topic, 0); o.At != poison {
		t.Fatalf("after --dry-run committed offset %d, want %d", o.At, poison)
	}

	out = mustCLI(t, p.Addr, "", append(deadLetterArgs, "--format", "json")...)
	var res struct {
		Created   bool   `json:"created_topic"`
		Previous  *int64 `json:"previous_offset"`
		Committed *int64 `json:"committed_offset"`
		Records   []struct {
			SourceOffset int64 `json:"source_offset"`
			DLQOffset    int64 `json:"dlq_offset"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("dead-letter --format json: %v\n%s", err, out)
	}
	if !res.Created || res.Previous == nil || *res.Previous != poison || res.Committed == nil || *res.Committed != poison+1 ||
		len(res.Records) != 1 || res.Records[0].SourceOffset != poison || res.Records[0].DLQOffset != 0 {
		t.Fatalf("dead-letter result %s, want topic created, %d -> %d, record %d at dlq offset 0", out, poison, poison+1, poison)
	}

	// The dead-letter topic holds the record with its provenance.
	got := readRecords(t, []string{p.Addr}, dlq, 1)
	r := got[0]
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{"origin": "test", "sluice.dlq.topic": topic, "sluice.dlq.partition": "0",
		"sluice.dlq.offset": fmt.Sprint(poison), "sluice.dlq.group": group, "sluice.dlq.reason": "manual"}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("dead-letter record header %s = %q, want %q (headers %v)", k, headers[k], v, headers)
		}
	}
	if _, ok := headers["sluice.dlq.timestamp"]; !ok {
		t.Errorf("dead-letter record has no sluice.dlq.timestamp header: %v", headers)
	}
	if string(r.Key) != fmt.Sprintf("k%d", poison) || string(r.Value) != fmt.Sprintf("v%d", poison) || !r.Timestamp.Equal(records[poison].Timestamp) {
		t.Errorf("dead-letter record key %q value %q ts %s, want k%d v%d ts %s", r.Key, r.Value, r.Timestamp, poison, poison, records[poison].Timestamp)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup(topic, 0); !ok || o.At != poison+1 {
		t.Fatalf("committed offset %+v, want %d", o, poison+1)
	}

	// The stuck report clears.
	deadline = time.Now().Add(testTimeout)
	for len(stuckReport(t, base).Stuck) != 0 || scrapeMetrics(t, base)[series("sluice_group_stuck_partitions", "group", group)] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still stuck %s after the dead-letter: %+v", testTimeout, stuckReport(t, base))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := describeStuck(t, p.Addr, adminAddr, group); len(d.Partitions) != 1 || d.Partitions[0].Stuck == nil || *d.Partitions[0].Stuck {
		t.Fatalf("group describe after the dead-letter: %+v, want not stuck", d.Partitions)
	}

	// A new consumer of the group reads every record after K.
	consumer := newClient(t, p.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	var seen []int64
	for int64(len(seen)) < total-poison-1 {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("new consumer read %v, want %d..%d: %v", seen, poison+1, total-1, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen = append(seen, r.Offset) })
	}
	for i, o := range seen {
		if o != poison+1+int64(i) {
			t.Fatalf("new consumer read offsets %v, want %d..%d", seen, poison+1, total-1)
		}
	}
}

// consumeUntilPoison is one life of the crash-looping consumer: it joins
// group, commits each record before poison and, on poison, closes its
// client without committing it. It returns early when stop closes.
func consumeUntilPoison(addr, group, topic string, poison int64, stop <-chan struct{}) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	defer cl.Close() // the "crash": leaves without committing poison
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			select {
			case <-stop:
				return nil
			default:
				return fmt.Errorf("no record %d within %s", poison, testTimeout)
			}
		}
		for _, r := range fs.Records() {
			if r.Offset == poison {
				return nil
			}
			if err := cl.CommitRecords(ctx, r); err != nil {
				return fmt.Errorf("commit offset %d: %w", r.Offset, err)
			}
		}
	}
}

// stuckJSON is GET /v1/groups/stuck.
type stuckJSON struct {
	Groups []string `json:"groups"`
	Stuck  []struct {
		Group         string `json:"group"`
		Topic         string `json:"topic"`
		Partition     int32  `json:"partition"`
		Offset        int64  `json:"committed_offset"`
		HighWatermark int64  `json:"high_watermark"`
		Reason        string `json:"reason"`
		Rebalances    int32  `json:"rebalances"`
	} `json:"stuck"`
}

func stuckReport(t *testing.T, base string) stuckJSON {
	t.Helper()
	code, body := httpGet(t, base+"/v1/groups/stuck")
	var r stuckJSON
	if err := json.Unmarshal([]byte(body), &r); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/groups/stuck: %d %v\n%s", code, err, body)
	}
	return r
}

// describedJSON is the part of `group describe --format json` the test
// reads.
type describedJSON struct {
	Partitions []struct {
		Topic       string `json:"topic"`
		Stuck       *bool  `json:"stuck"`
		StuckReason string `json:"stuck_reason"`
	} `json:"partitions"`
}

func describeStuck(t *testing.T, addr, adminAddr, group string) describedJSON {
	t.Helper()
	out := mustCLI(t, addr, "", "group", "describe", group, "--admin", adminAddr, "--format", "json")
	var d describedJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("group describe --format json: %v\n%s", err, out)
	}
	return d
}

// waitGroupState polls DescribeGroups until group is in state.
func waitGroupState(t *testing.T, adm *kadm.Client, group, state string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil && d[group].State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not %s within %s: %+v %v", group, state, testTimeout, d[group], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
