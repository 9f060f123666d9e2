package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// recommendedOpenFiles is the open file limit below which serve warns at
// start: enough for about 2,000 partitions of a segment or two each, with
// room for client connections.
const recommendedOpenFiles = 16384

// Open files a node needs beyond its segments: each partition's Raft log
// sidecar and stable store, and client and peer connections.
const (
	filesPerPartition = 2
	filesSpare        = 512
)

// openFilesNeeded estimates the files a node opening dataDir keeps open:
// three per segment (log, offset index, time index), filesPerPartition
// per partition directory, and filesSpare for connections. A data dir
// that does not exist yet needs only the spare.
func openFilesNeeded(dataDir string) (need uint64, partitions, segments int, err error) {
	dirs, err := os.ReadDir(filepath.Join(dataDir, "topics"))
	if os.IsNotExist(err) {
		return filesSpare, 0, 0, nil
	}
	if err != nil {
		return 0, 0, 0, err
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		partitions++
		files, err := os.ReadDir(filepath.Join(dataDir, "topics", d.Name()))
		if err != nil {
			return 0, 0, 0, err
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".log") {
				segments++
			}
		}
	}
	return uint64(3*segments + filesPerPartition*partitions + filesSpare), partitions, segments, nil
}

// checkOpenFiles fails when the open file limit (soft, as raised) is below
// what the data dir's partitions and segments need, naming the fix, rather
// than letting the node fail later on "too many open files" with some
// partitions open and others not.
func checkOpenFiles(dataDir string, soft uint64) error {
	need, partitions, segments, err := openFilesNeeded(dataDir)
	if err != nil {
		return fmt.Errorf("count the segments in %s: %w", dataDir, err)
	}
	if soft >= need {
		return nil
	}
	return fmt.Errorf("%d partitions with %d segments need about %d open files, but the limit is %d: "+
		"raise the hard limit where sluice starts (ulimit -Hn %d in its shell, LimitNOFILE=%d in a systemd unit, nofile in /etc/security/limits.conf), "+
		"or use fewer, larger segments (log.segment.bytes)", partitions, segments, need, soft, need, need)
}
