package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/twmb/franz-go/pkg/kmsg"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kcatPath returns kcat's path, skipping or failing the test when it is
// missing (see needClient).
func kcatPath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p := lookPath(name); p != "" {
			return p
		}
	}
	needClient(tb, "kcat is not installed")
	return ""
}

// runKcat runs kcat with args and stdin and returns its stdout.
func runKcat(tb testing.TB, kcat string, stdin string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestKcat produces and consumes with kcat (librdkafka) from the shell,
// uncompressed and compressed, and reads metadata with kcat -L.
func TestKcat(t *testing.T) {
	kcat := kcatPath(t)
	srv := startServer(t)
	const n = 500
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, "key-%d:value %d from kcat\n", i, i)
	}

	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, srv.Addr, topic, 1)
			runKcat(t, kcat, lines.String(), "-b", srv.Addr, "-P", "-t", topic, "-K", ":",
				"-z", codec, "-X", "acks=all", "-X", "enable.idempotence=true")
			out := runKcat(t, kcat, "", "-b", srv.Addr, "-C", "-t", topic, "-o", "beginning", "-e",
				"-f", "%k:%s\n")
			if out != lines.String() {
				t.Errorf("kcat consumed:\n%.300s\nwant:\n%.300s", out, lines.String())
			}

			// librdkafka compresses only when the broker's ApiVersions
			// convince it the codec is supported (Produce v0 for gzip and
			// snappy, FindCoordinator for lz4); otherwise it silently sends
			// uncompressed data. Check the stored batch's codec.
			batches := rawFetch(t, dialRaw(t, srv.Addr), apiVersions(t, srv.Addr), topic, 0, 0)
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(batches); err != nil {
				t.Fatalf("decode stored batch: %v", err)
			}
			wantCodec := map[string]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
			if got := batch.Attributes & 0x07; got != wantCodec {
				t.Errorf("kcat -z %s stored a batch with codec %d, want %d: librdkafka decided the broker lacks the codec", codec, got, wantCodec)
			}

			// kgo reads what kcat wrote, too.
			got := consumeN(t, newClient(t, srv.Addr, consumeFromStart(topic)...), n)
			for i, r := range got {
				if want := fmt.Sprintf("key-%d:value %d from kcat", i, i); string(r.Key)+":"+string(r.Value) != want || r.Offset != int64(i) {
					t.Fatalf("kgo read record %d as %q:%q at offset %d, want %q at %d", i, r.Key, r.Value, r.Offset, want, i)
				}
			}
		})
	}

	t.Run("metadata", func(t *testing.T) {
		createTopic(t, srv.Addr, "kcat-meta", 4)
		out := runKcat(t, kcat, "", "-b", srv.Addr, "-L", "-J", "-t", "kcat-meta")
		var meta struct {
			Brokers []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string `json:"topic"`
				Partitions []struct {
					Partition int32 `json:"partition"`
					Leader    int32 `json:"leader"`
				} `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal([]byte(out), &meta); err != nil {
			t.Fatalf("kcat -L -J output is not JSON: %v\n%s", err, out)
		}
		if len(meta.Brokers) != 1 || meta.Brokers[0].Name != srv.Addr {
			t.Errorf("brokers %+v, want one named %s", meta.Brokers, srv.Addr)
		}
		if len(meta.Topics) != 1 || meta.Topics[0].Topic != "kcat-meta" || len(meta.Topics[0].Partitions) != 4 {
			t.Fatalf("topics %+v, want kcat-meta with 4 partitions", meta.Topics)
		}
		for _, p := range meta.Topics[0].Partitions {
			if len(meta.Brokers) == 1 && p.Leader != meta.Brokers[0].ID {
				t.Errorf("partition %d leader %d, want %d", p.Partition, p.Leader, meta.Brokers[0].ID)
			}
		}
	})
}
