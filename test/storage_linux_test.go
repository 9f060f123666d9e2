//go:build linux

package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition/record"
)

// mountSmallDisk makes a 64 MiB ext4 filesystem in a file and loop-mounts
// it under the test's temporary directory, or skips the test where that
// needs privileges the machine does not give. t.Cleanup unmounts it (after
// the processes started later are gone: clean-ups run last first).
func mountSmallDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(64<<20), f.Close()); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4 unavailable: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount a filesystem here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	return mnt
}

// fill allocates size bytes to a new file at path (fallocate: real
// blocks, not a sparse file).
func fill(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatalf("fallocate %d bytes to %s: %v", size, path, err)
	}
}

// TestStorageRealDiskFills runs a node on a small real filesystem: filled
// below storage.min.free.bytes, produce is refused with
// KAFKA_STORAGE_ERROR while a retrying producer keeps its records; freed,
// every record lands once, without a restart. With the check off and the
// disk filled to the last block, the write fails with ENOSPC and the
// answer is still KAFKA_STORAGE_ERROR, never UNKNOWN_SERVER_ERROR, with
// the file and the OS error in the log.
func TestStorageRealDiskFills(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting a filesystem needs root")
	}
	mnt := mountSmallDisk(t)
	const topic = "small-disk"
	const threshold = 16 << 20
	data := filepath.Join(mnt, "data")
	adminAddr := freeAddr(t)
	p := startProcess(t, data, "--admin-listen", adminAddr, "--storage-min-free-bytes", fmt.Sprint(threshold))
	base := "http://" + adminAddr
	cl := newProducer(t, []string{p.Addr}, topic)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Raw probes go to a topic of their own: the producer's history stays
	// checkable.
	const probe = "small-disk-probe"
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, topic, probe); err != nil {
		t.Fatal(err)
	}

	// Fill the disk to 8 MiB free: below the threshold.
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, int64(freeBytes(t, mnt))-8<<20)
	eventually(t, "produce refused below storage.min.free.bytes", func() bool {
		sp, _ := produceTo(t, p.Addr, probe, 9, -1)
		return sp.ErrorCode == kerr.KafkaStorageError.Code
	})
	l := startLoad(t, cl, "s", 100)
	eventually(t, "the producer retried against KAFKA_STORAGE_ERROR", func() bool {
		return scrapeMetrics(t, base)[series("sluice_request_errors_total", "api", "Produce", "code", "KAFKA_STORAGE_ERROR")] >= 5
	})
	if acked, failed := l.counts(); acked != 0 || failed != 0 {
		t.Fatalf("below the threshold: %d records acknowledged, %d failed; want all buffered", acked, failed)
	}

	// Space comes back: the node serves again by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	l.waitAcked(300)
	acked, failed := l.stop()
	if len(failed) != 0 {
		for v, err := range failed {
			t.Fatalf("%d records failed, e.g. %s: %v", len(failed), v, err)
		}
	}
	checkHistory(t, []string{p.Addr}, topic, acked)

	// The check off and the disk full to the last block: the write itself
	// fails (ENOSPC) and is still answered KAFKA_STORAGE_ERROR.
	set := func(v string) *string { return &v }
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "storage.min.free.bytes", Value: set("0")}}, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the free-space check off", func() bool {
		return scrapeMetrics(t, base)[series("sluice_storage_min_free_bytes", "dir", data)] == 0
	})
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			break
		}
	}
	f.Close()
	// Batches of 256 KiB: the blocks already allocated to the segment
	// cannot hold many.
	var code int16
	for range 200 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = -1, 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = probe
		rp := kmsg.NewProduceRequestTopicPartition()
		var b record.Builder
		b.Add(1000, nil, make([]byte, 256<<10))
		batch, err := b.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := dialRaw(t, p.Addr).mustRoundTrip(req).(*kmsg.ProduceResponse)
		if code = resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			break
		}
	}
	if code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	eventually(t, "the node reports the failed replica", func() bool {
		code, body := httpGet(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "replica "+probe+"-0 failed") && strings.Contains(body, "no space left on device")
	})
	if v := scrapeMetrics(t, base)[series("sluice_request_errors_total", "api", "Produce", "code", "UNKNOWN_SERVER_ERROR")]; v != 0 {
		t.Fatalf("UNKNOWN_SERVER_ERROR answered %v times", v)
	}
	if out := p.Output(); !strings.Contains(out, "partition storage failed") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("the log does not say what failed:\n%s", out)
	}
}
