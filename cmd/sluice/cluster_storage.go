package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

// minFreeBytesConfig is the broker config below whose free bytes a node
// refuses produce (storage.min.free.bytes).
const minFreeBytesConfig = "storage.min.free.bytes"

// nodeStorage is a node's log directory as it describes it
// (DescribeLogDirs) and the free space it must keep (DescribeConfigs).
type nodeStorage struct {
	// Dir is the node's log directory.
	Dir string `json:"dir"`
	// TotalBytes and FreeBytes are the size of its filesystem and the
	// bytes available there, as the node's last check read them; -1 when
	// it reports none.
	TotalBytes int64 `json:"total_bytes"`
	FreeBytes  int64 `json:"free_bytes"`
	// MinFreeBytes is storage.min.free.bytes in force on the node (0: the
	// check is off), -1 when it does not say.
	MinFreeBytes int64 `json:"min_free_bytes"`
	// LogBytes is the size of its partitions' segments.
	LogBytes int64 `json:"log_bytes"`
	// ProduceRefused is set while FreeBytes is below MinFreeBytes: the
	// node answers produce and group commits KAFKA_STORAGE_ERROR.
	ProduceRefused bool `json:"produce_refused"`
}

// describeNodeStorage asks node for its log directory and its
// storage.min.free.bytes.
func describeNodeStorage(ctx context.Context, adm *kadm.Client, node int32) (*nodeStorage, error) {
	dirs, err := adm.DescribeBrokerLogDirs(ctx, node, nil)
	if err != nil {
		return nil, fmt.Errorf("describe log dirs: %w", err)
	}
	st := &nodeStorage{TotalBytes: -1, FreeBytes: -1, MinFreeBytes: -1}
	found := false
	for _, d := range dirs.Sorted() {
		if d.Err != nil {
			return nil, fmt.Errorf("log dir %s: %w", d.Dir, d.Err)
		}
		// Sluice has one log directory per node; add up any others.
		if !found {
			st.Dir, st.TotalBytes, st.FreeBytes, found = d.Dir, d.TotalBytes, d.UsableBytes, true
		}
		st.LogBytes += d.Size()
	}
	if !found {
		return nil, errors.New("describe log dirs: no log directory")
	}
	configs, err := adm.DescribeBrokerConfigs(ctx, node)
	if err != nil {
		return st, fmt.Errorf("describe broker configs: %w", err)
	}
	for _, rc := range configs {
		if rc.Err != nil {
			return st, fmt.Errorf("describe broker configs: %w", rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == minFreeBytesConfig && c.Value != nil {
				if n, err := strconv.ParseInt(*c.Value, 10, 64); err == nil {
					st.MinFreeBytes = n
				}
			}
		}
	}
	st.ProduceRefused = st.MinFreeBytes > 0 && st.FreeBytes >= 0 && st.FreeBytes < st.MinFreeBytes
	return st, nil
}

// formatStorage renders a node's free space for the status table: "free
// of total", then whether produce is refused.
func formatStorage(st *nodeStorage) (free, disk string) {
	if st == nil {
		return "-", "-"
	}
	free = "-"
	if st.FreeBytes >= 0 && st.TotalBytes >= 0 {
		free = formatBytes(st.FreeBytes) + " of " + formatBytes(st.TotalBytes)
	}
	switch {
	case st.ProduceRefused:
		disk = "LOW: produce refused (min " + formatBytes(st.MinFreeBytes) + ")"
	case st.MinFreeBytes < 0 || st.FreeBytes < 0:
		disk = "unknown"
	default:
		disk = "ok"
	}
	return free, disk
}
