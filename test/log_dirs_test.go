package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeLogDirs checks DescribeLogDirs through kadm and at its
// oldest and newest versions: the node's one log directory, each of its
// partitions with the bytes its segments hold (matching the .log files on
// disk), the filesystem's size and free bytes from v4, and a request
// naming partitions gets only those stored here.
func TestDescribeLogDirs(t *testing.T) {
	const topic = "log-dirs"
	srv := startServer(t)
	createTopic(t, srv.Addr, topic, 3)
	producer := newClient(t, srv.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	records := makeRecords(topic, 40)
	for i, r := range records {
		r.Partition = int32(i % 2) // partition 2 stays empty
	}
	produceAll(t, producer, records)

	adm := newAdmin(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	if len(all) != 1 || len(dirs) != 1 {
		t.Fatalf("log dirs %+v: want one node with one directory", all)
	}
	var dir kadm.DescribedLogDir
	for _, d := range dirs {
		dir = d
	}
	if want := filepath.Join(srv.DataDir(), "topics"); dir.Dir != want || dir.Err != nil {
		t.Fatalf("dir %q (%v), want %q", dir.Dir, dir.Err, want)
	}
	if dir.TotalBytes <= 0 || dir.UsableBytes <= 0 || dir.UsableBytes > dir.TotalBytes {
		t.Errorf("total %d, usable %d bytes", dir.TotalBytes, dir.UsableBytes)
	}
	for p := range int32(3) {
		got, ok := dir.Topics.Lookup(topic, p)
		want := logFilesSize(t, srv.DataDir(), topic, p)
		if !ok || got.Size != want || got.OffsetLag != 0 || got.IsFuture {
			t.Errorf("partition %d: %+v (listed %v), want size %d", p, got, ok, want)
		}
		if p < 2 && want == 0 {
			t.Errorf("partition %d holds no bytes on disk", p)
		}
	}
	if _, ok := dir.Topics.Lookup("__consumer_offsets", 0); !ok {
		t.Error("__consumer_offsets is not listed")
	}

	// Only what was named, and only what is here.
	var named kadm.TopicsSet
	named.Add(topic, 1, 7)
	named.Add("no-such-topic", 0)
	some, err := adm.DescribeBrokerLogDirs(ctx, 1, named)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	some.EachPartition(func(p kadm.DescribedLogDirPartition) {
		listed = append(listed, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
	})
	if fmt.Sprint(listed) != "["+topic+"/1]" {
		t.Errorf("named %v, listed %v", named, listed)
	}

	// v0 (no sizes of the filesystem) and v4, raw.
	c := dialRaw(t, srv.Addr)
	for _, v := range []int16{0, 4} {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.SetVersion(v)
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp := c.mustRoundTrip(req).(*kmsg.DescribeLogDirsResponse)
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || len(resp.Dirs[0].Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		d := resp.Dirs[0]
		if p := d.Topics[0].Partitions[0]; p.Partition != 0 || p.Size <= 0 {
			t.Errorf("v%d: partition %+v", v, p)
		}
		if v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes <= 0) {
			t.Errorf("v%d: total %d, usable %d", v, d.TotalBytes, d.UsableBytes)
		}
	}
}

// logFilesSize returns the bytes of the .log files of topic's partition
// under dataDir.
func logFilesSize(t *testing.T, dataDir, topic string, partition int32) int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, "topics", fmt.Sprintf("%s-%d", topic, partition), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	return size
}

// TestClusterStatusStorage checks the storage part of `sluice cluster
// status`: each node's data, free bytes and storage.min.free.bytes; with
// the threshold raised above the free space the node refuses produce, the
// status says so and exits 3; lowered again, it is healthy.
func TestClusterStatusStorage(t *testing.T) {
	srv := startServer(t)
	createTopic(t, srv.Addr, "status-storage", 1)
	produceAll(t, newClient(t, srv.Addr), makeRecords("status-storage", 20))

	out, code := clusterStatus(t, srv.Addr, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	n := parseClusterStatus(t, out).Nodes[0]
	if n.Storage == nil {
		t.Fatalf("node %+v has no storage", n)
	}
	s := *n.Storage
	if s.Dir != filepath.Join(srv.DataDir(), "topics") || s.TotalBytes <= 0 || s.FreeBytes <= 0 || s.MinFreeBytes != 1<<30 || s.LogBytes <= 0 || s.ProduceRefused {
		t.Fatalf("storage %+v", s)
	}

	setMinFree := func(v int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		value := strconv.FormatInt(v, 10)
		resp, err := newAdmin(t, srv.Addr).AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "storage.min.free.bytes", Value: &value}}, 1)
		if err == nil {
			err = resp[0].Err
		}
		if err != nil {
			t.Fatalf("set storage.min.free.bytes to %d: %v", v, err)
		}
	}
	// Far above what any disk has free.
	setMinFree(1 << 60)
	var last string
	eventually(t, "cluster status to report produce refused", func() bool {
		out, code := clusterStatus(t, srv.Addr)
		last = out
		return code == exitUnhealthyCode && strings.Contains(out, "LOW: produce refused") && strings.Contains(out, "1 refusing produce (low disk)")
	})
	t.Logf("refusing:\n%s", last)
	out, _ = clusterStatus(t, srv.Addr, "--format", "json")
	if st := parseClusterStatus(t, out); st.Healthy || st.Nodes[0].Storage == nil || !st.Nodes[0].Storage.ProduceRefused || st.Nodes[0].Storage.MinFreeBytes != 1<<60 {
		t.Fatalf("json while refusing: %s", out)
	}

	setMinFree(0)
	eventually(t, "cluster status to be healthy again", func() bool {
		out, code := clusterStatus(t, srv.Addr)
		return code == 0 && strings.Contains(out, "status:      healthy")
	})
}
