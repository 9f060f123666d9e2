package test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pythonWith returns a python3 that can import module, preferring the
// system one (/usr/bin/python3, where Debian's python3-kafka and
// python3-confluent-kafka install) over the first on PATH.
func pythonWith(tb testing.TB, module, pkg string) string {
	tb.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p := lookPath("python3"); p != "" {
		candidates = append(candidates, p)
	}
	for _, python := range candidates {
		if exec.Command(python, "-c", "import "+module).Run() == nil {
			return python
		}
	}
	needClient(tb, fmt.Sprintf("no python3 can import %s (Debian package %s)", module, pkg))
	return ""
}

// runPython runs script with python and args; it returns stdout.
func runPython(tb testing.TB, python, script string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("python %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// kafka-python: produce argv[3] records "py-key-i"/"py-value-i" with
// acks=all, or consume argv[3] records from partition 0 printing
// "offset key value" lines.
const kafkaPythonScript = `
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
mode, addr, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "produce":
    p = KafkaProducer(bootstrap_servers=addr, acks="all", retries=5)
    futures = [p.send(topic, key=b"py-key-%d" % i, value=b"py-value-%d" % i, partition=0) for i in range(n)]
    p.flush(timeout=30)
    for f in futures:
        f.get(timeout=30)
    p.close()
else:
    c = KafkaConsumer(bootstrap_servers=addr, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=20000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = 0
    for m in c:
        print(m.offset, m.key.decode(), m.value.decode())
        got += 1
        if got == n:
            break
    c.close()
`

// confluent-kafka-python (librdkafka): same contract as kafkaPythonScript.
const confluentKafkaScript = `
import sys
from confluent_kafka import Producer, Consumer, TopicPartition, OFFSET_BEGINNING
mode, addr, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "produce":
    errors = []
    def report(err, msg):
        if err is not None:
            errors.append(err)
    p = Producer({"bootstrap.servers": addr, "acks": "all", "enable.idempotence": True})
    for i in range(n):
        p.produce(topic, key=b"py-key-%d" % i, value=b"py-value-%d" % i, partition=0, on_delivery=report)
        p.poll(0)
    left = p.flush(30)
    if left or errors:
        sys.exit("undelivered: %d, errors: %s" % (left, errors[:3]))
else:
    c = Consumer({"bootstrap.servers": addr, "group.id": "unused-no-commits",
                  "enable.auto.commit": False, "enable.auto.offset.store": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = 0
    while got < n:
        m = c.poll(20)
        if m is None:
            sys.exit("timed out after %d records" % got)
        if m.error():
            sys.exit("consume error: %s" % m.error())
        print(m.offset(), m.key().decode(), m.value().decode())
        got += 1
    c.close()
`

// TestPythonClients produces and consumes with kafka-python and
// confluent-kafka-python: each consumes what franz-go produced, and
// franz-go consumes what each produced.
func TestPythonClients(t *testing.T) {
	srv := startServer(t)
	const n = 300
	for _, tc := range []struct {
		name, module, pkg, script string
	}{
		{"kafka-python", "kafka", "python3-kafka", kafkaPythonScript},
		{"confluent-kafka", "confluent_kafka", "python3-confluent-kafka", confluentKafkaScript},
	} {
		t.Run(tc.name, func(t *testing.T) {
			python := pythonWith(t, tc.module, tc.pkg)

			t.Run("consume", func(t *testing.T) {
				topic := tc.name + "-consume"
				createTopic(t, srv.Addr, topic, 1)
				produced := makeRecords(topic, n)
				// Uncompressed: kafka-python decompresses snappy only
				// with python3-snappy, which is not what this tests.
				produceAll(t, newClient(t, srv.Addr, kgo.ProducerBatchCompression(kgo.NoCompression())), produced)
				out := runPython(t, python, tc.script, "consume", srv.Addr, topic, strconv.Itoa(n))
				var want strings.Builder
				for _, r := range produced {
					fmt.Fprintf(&want, "%d %s %s\n", r.Offset, r.Key, r.Value)
				}
				if out != want.String() {
					t.Errorf("%s consumed:\n%.400s\nwant:\n%.400s", tc.name, out, want.String())
				}
			})

			t.Run("produce", func(t *testing.T) {
				topic := tc.name + "-produce"
				createTopic(t, srv.Addr, topic, 1)
				runPython(t, python, tc.script, "produce", srv.Addr, topic, strconv.Itoa(n))
				want := make([]*kgo.Record, n)
				for i := range want {
					want[i] = &kgo.Record{Topic: topic, Offset: int64(i), Key: fmt.Appendf(nil, "py-key-%d", i), Value: fmt.Appendf(nil, "py-value-%d", i)}
				}
				got := consumeN(t, newClient(t, srv.Addr, consumeFromStart(topic)...), n)
				compareRecords(t, tc.name+" produced", got, want)
			})
		})
	}
}
