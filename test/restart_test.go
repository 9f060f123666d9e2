package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKill9Durability runs sluice as a process, produces in rounds with
// acks=all (every round acknowledged before the next), kills the process
// with SIGKILL, restarts it on the same data and expects every acknowledged
// record at the offset it was acknowledged at.
func TestKill9Durability(t *testing.T) {
	const (
		topic  = "durable"
		rounds = 20
		each   = 250
	)
	proc := startProcess(t, t.TempDir())
	createTopic(t, proc.Addr, topic, 3)
	producer := newClient(t, proc.Addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	var acked []*kgo.Record
	for round := range rounds {
		batch := makeRecords(topic, each)
		for i, r := range batch {
			r.Value = fmt.Appendf(nil, "round-%02d-%04d", round, i)
		}
		produceAll(t, producer, batch) // returns only after every ack
		acked = append(acked, batch...)
	}
	want := expectedByPartition(t, acked)
	producer.Close()

	proc.Kill()
	proc.Restart()

	consumer := newClient(t, proc.Addr, consumeFromStart(topic)...)
	got := byPartition(consumeN(t, consumer, len(acked)))
	for p, records := range want {
		compareRecords(t, fmt.Sprintf("partition %d after kill -9", p), got[p], records)
	}

	// The restarted node accepts new writes after the recovered ones.
	more := newClient(t, proc.Addr)
	extra := makeRecords(topic, 10)
	produceAll(t, more, extra)
	for _, r := range extra {
		if r.Offset < int64(len(want[r.Partition])) {
			t.Errorf("record produced after restart got offset %d in partition %d, which already held %d records", r.Offset, r.Partition, len(want[r.Partition]))
		}
	}
}

// TestKill9DuringProduce kills the process while a producer streams
// records with acks=all, restarts it, and expects every record whose
// produce was acknowledged at the offset it was acknowledged at. Records
// in flight at the kill may or may not be there; offsets stay dense.
func TestKill9DuringProduce(t *testing.T) {
	const (
		topic  = "streaming"
		total  = 50_000
		killAt = 5_000 // acknowledgements before the kill
	)
	proc := startProcess(t, t.TempDir())
	createTopic(t, proc.Addr, topic, 3)
	producer, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()

	var (
		mu      sync.Mutex
		acked   []*kgo.Record
		reached = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range total {
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%100), Value: fmt.Appendf(nil, "stream-%06d", i)}
			producer.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if acked = append(acked, r); len(acked) == killAt {
					close(reached)
				}
			})
			if ctx.Err() != nil {
				return
			}
		}
	}()
	select {
	case <-reached:
	case <-time.After(testTimeout):
		t.Fatalf("fewer than %d acknowledgements within %s", killAt, testTimeout)
	}
	proc.Kill()
	cancel()
	<-produced
	producer.Close() // fails what is still buffered; every promise has run
	mu.Lock()
	ackedNow := slices.Clone(acked)
	mu.Unlock()
	t.Logf("%d records acknowledged before and around the kill", len(ackedNow))

	proc.Restart()
	ctxList, cancelList := context.WithTimeout(context.Background(), testTimeout)
	defer cancelList()
	ends, err := newAdmin(t, proc.Addr).ListEndOffsets(ctxList, topic)
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	ends.Each(func(o kadm.ListedOffset) { stored += int(o.Offset) })
	got := byPartition(consumeN(t, newClient(t, proc.Addr, consumeFromStart(topic)...), stored))
	for p, records := range got {
		for i, r := range records {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d; offsets must be dense", p, i, r.Offset)
			}
		}
	}
	lost := 0
	for _, want := range ackedNow {
		records := got[want.Partition]
		if want.Offset >= int64(len(records)) || !bytes.Equal(records[want.Offset].Value, want.Value) {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged record %q at %d/%d is missing after kill -9", want.Value, want.Partition, want.Offset)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records lost", lost, len(ackedNow))
	}
}

// TestGracefulShutdown sends SIGTERM and expects exit status 0, the
// lifecycle log lines, and the data back after a restart.
func TestGracefulShutdown(t *testing.T) {
	proc := startProcess(t, t.TempDir(), "--log-format", "json")
	produced := makeRecords("graceful", 100)
	produceAll(t, newClient(t, proc.Addr, kgo.AllowAutoTopicCreation()), produced)

	if err := proc.Terminate(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, proc.Output())
	}
	out := proc.Output()
	for _, line := range []string{`"msg":"listening"`, `"msg":"shutdown complete"`} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %s:\n%s", line, out)
		}
	}

	proc.Restart()
	got := consumeN(t, newClient(t, proc.Addr, consumeFromStart("graceful")...), len(produced))
	compareRecords(t, "after SIGTERM and restart", got, produced)
}

// TestConfigSources checks that the environment and a YAML file configure
// the process (num.partitions decides the size of an auto-created topic)
// and that flags win over both.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte("num.partitions: 2\nlog:\n  level: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want int
	}{
		{"default", nil, nil, 1},
		{"file", nil, []string{"--config", file}, 2},
		{"env over file", []string{"SLUICE_NUM_PARTITIONS=3"}, []string{"--config", file}, 3},
		{"flag over env", []string{"SLUICE_NUM_PARTITIONS=3"}, []string{"--num-partitions", "4"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := &sluiceProcess{tb: t, Addr: freeAddr(t), DataDir: t.TempDir(), Args: tc.args, Env: tc.env}
			proc.start()
			t.Cleanup(func() {
				if proc.running() {
					proc.Kill()
				}
			})
			produceAll(t, newClient(t, proc.Addr, kgo.AllowAutoTopicCreation()), []*kgo.Record{{Topic: "auto", Value: []byte("x")}})
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			topics, err := newAdmin(t, proc.Addr).ListTopics(ctx, "auto")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(topics["auto"].Partitions); n != tc.want {
				t.Errorf("auto-created topic has %d partitions, want %d", n, tc.want)
			}
		})
	}
}

// TestServeFailsToStart checks that bad configuration and a port in use end
// the process with a non-zero status and a message naming the problem.
func TestServeFailsToStart(t *testing.T) {
	busy := freeAddr(t)
	l := listenOn(t, busy)
	defer l.Close()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // in the output
	}{
		{"bad flush mode", nil, []string{"--log-flush-mode", "sometimes"}, "log.flush.mode"},
		{"bad env integer", []string{"SLUICE_NUM_PARTITIONS=many"}, nil, "SLUICE_NUM_PARTITIONS"},
		{"zero partitions", nil, []string{"--num-partitions", "0"}, "num.partitions"},
		{"bad timestamp type", nil, []string{"--log-message-timestamp-type", "Now"}, "log.message.timestamp.type"},
		{"listen not host:port", nil, []string{"--listen", "nowhere"}, "listen"},
		{"port in use", nil, []string{"--listen", busy}, "listen on " + busy},
		{"missing config file", nil, []string{"--config", "/nonexistent/sluice.yaml"}, "/nonexistent/sluice.yaml"},
		{"unknown config key", nil, []string{"--config", writeFile(t, "num.partition: 3\n")}, "num.partition"},
		{"unknown flag", nil, []string{"--no-such-flag"}, "no-such-flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--admin-listen", "127.0.0.1:0"}, tc.args...)
			out, err := runSluice(t, tc.env, args...)
			if err == nil {
				t.Fatalf("sluice %s exited 0, want failure\n%s", strings.Join(args, " "), out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not mention %q:\n%s", tc.want, out)
			}
		})
	}
}

// TestVersionCommand checks `sluice version` prints the version.
func TestVersionCommand(t *testing.T) {
	out, err := runSluice(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "sluice ") {
		t.Errorf("sluice version: %v, output %q", err, out)
	}
}

func writeFile(tb testing.TB, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}
