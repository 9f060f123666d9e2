package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestManySegmentsUnderLowOpenFileLimit runs a broker whose open file
// limit (soft and hard) is far below three files per segment of its data:
// many partitions of many small segments are written, the broker is
// restarted (its start-up check must pass) and every record is read back,
// each partition from its start, while the broker's open descriptors stay
// within 5 per partition, the sealed file cache and a spare for
// connections, however many segments there are.
func TestManySegmentsUnderLowOpenFileLimit(t *testing.T) {
	const (
		topic       = "many-segments"
		partitions  = 24
		rounds      = 24 // one record per partition per round: a segment each
		limit       = 1000
		sealedFiles = 16
	)
	p := &sluiceProcess{tb: t, Addr: freeAddr(t), DataDir: t.TempDir(), OpenFileLimit: limit,
		Args: []string{"--log-max-open-sealed-files", fmt.Sprint(sealedFiles)}}
	p.start()
	t.Cleanup(func() {
		if p.running() {
			p.Kill()
		}
		if t.Failed() {
			t.Logf("sluice output:\n%s", p.Output())
		}
	})
	createTopicWithPartitions(t, p.Addr, topic, partitions, map[string]string{"segment.bytes": "4096"})

	producer := newClient(t, p.Addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	var produced []*kgo.Record
	for round := range rounds {
		batch := make([]*kgo.Record, partitions)
		for part := range batch {
			// 3 KiB: a second batch does not fit a 4 KiB segment.
			value := fmt.Appendf(nil, "%02d-%03d-%s", part, round, strings.Repeat("x", 3<<10))
			batch[part] = &kgo.Record{Topic: topic, Partition: int32(part), Value: value}
		}
		produceAll(t, producer, batch)
		produced = append(produced, batch...)
	}
	producer.Close()
	segments := countSegments(t, p.DataDir, topic)
	if segments*3 <= limit {
		t.Fatalf("only %d segments: three files each must exceed the limit %d for the test to mean anything", segments, limit)
	}
	// __consumer_offsets' partitions count too.
	all, err := filepath.Glob(filepath.Join(p.DataDir, "topics", "*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := len(all)
	checkOpenDescriptors(t, p, dirs, sealedFiles)

	if err := p.Terminate(); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	p.Restart()

	consumer := newClient(t, p.Addr, consumeFromStart(topic)...)
	got := byPartition(consumeN(t, consumer, len(produced)))
	want := byPartition(produced)
	for part := range int32(partitions) {
		compareRecords(t, fmt.Sprintf("partition %d after restart", part), got[part], want[part])
	}
	checkOpenDescriptors(t, p, dirs, sealedFiles)
	t.Logf("%d partitions, %d segments (%d files), open file limit %d", partitions, segments, 3*segments, limit)

	// Under a limit below 5 per partition + the cache + 512 the broker
	// refuses to start, saying what it needs and how to get it.
	if err := p.Terminate(); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	need := 5*dirs + sealedFiles + 512
	p.OpenFileLimit = need - 1
	p.launch()
	select {
	case <-p.exited:
	case <-time.After(testTimeout):
		t.Fatalf("sluice still runs %s after starting under a limit of %d", testTimeout, need-1)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code %d under a limit of %d, want 1", code, need-1)
	}
	for _, want := range []string{fmt.Sprintf("%d partitions need about %d open files", dirs, need), "ulimit -Hn", "log.max.open.sealed.files"} {
		if !strings.Contains(p.Output(), want) {
			t.Fatalf("start-up under a limit of %d does not say %q:\n%s", need-1, want, p.Output())
		}
	}
}

// createTopicWithPartitions creates topic with partitions partitions on
// one replica and the given configs.
func createTopicWithPartitions(t *testing.T, addr, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ptrs := map[string]*string{}
	for k, v := range configs {
		ptrs[k] = ptr(v)
	}
	resp, err := newAdmin(t, addr).CreateTopic(ctx, partitions, 1, ptrs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// countSegments counts the .log files of topic's partitions under dataDir.
func countSegments(t *testing.T, dataDir, topic string) int {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dataDir, "topics", topic+"-*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(logs)
}

// checkOpenDescriptors checks the process's open descriptors against what
// the partitions and the cache may hold, with 64 to spare for the
// metadata store, sockets and the runtime: the bound does not depend on
// the number of segments.
func checkOpenDescriptors(t *testing.T, p *sluiceProcess, partitions, sealedFiles int) {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if bound := 5*partitions + sealedFiles + 64; len(fds) > bound {
		t.Fatalf("%d descriptors open, want at most %d", len(fds), bound)
	}
	t.Logf("%d descriptors open", len(fds))
}
