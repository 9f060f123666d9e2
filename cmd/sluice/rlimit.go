package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-io/sluice/log"
)

// recommendedOpenFiles is the open file limit below which serve warns at
// start: enough for about 2,900 partitions with the default sealed file
// cache and room for client connections.
const recommendedOpenFiles = 16384

// Open files a node keeps per partition and beyond its partitions. A
// partition keeps its active segment's three files open (log, offset
// index, time index) and its Raft log's sidecar and stable store; sealed
// segments keep none, their .log files being opened on demand within
// log.max.open.sealed.files for the whole node. filesSpare is for client
// and peer connections, the metadata store and the reads in flight
// (an evicted sealed file stays open until its read ends).
const (
	filesPerPartition = 3 + 2
	filesSpare        = 512
)

// sealedFilesLimit returns the limit of the sealed segment file cache:
// log.max.open.sealed.files when given (configured > 0), else
// log.DefaultMaxOpenSealedFiles, or a quarter of the open file limit when
// that is lower (and known), so that a node under a low limit still has
// room for its partitions.
func sealedFilesLimit(configured int, soft uint64, known bool) int {
	if configured > 0 {
		return configured
	}
	limit := log.DefaultMaxOpenSealedFiles
	if known {
		limit = int(min(uint64(limit), max(soft/4, 1)))
	}
	return limit
}

// openFilesNeeded estimates the files a node opening dataDir keeps open:
// filesPerPartition per partition directory, the sealed file cache's
// limit, and filesSpare. It does not grow with the number of segments. A
// data dir that does not exist yet needs the cache and the spare only.
func openFilesNeeded(dataDir string, sealedFiles int) (need uint64, partitions int, err error) {
	dirs, err := os.ReadDir(filepath.Join(dataDir, "topics"))
	if err != nil && !os.IsNotExist(err) {
		return 0, 0, err
	}
	for _, d := range dirs {
		if d.IsDir() {
			partitions++
		}
	}
	return uint64(filesPerPartition*partitions + sealedFiles + filesSpare), partitions, nil
}

// checkOpenFiles fails when the open file limit (soft, as raised) is below
// what the data dir's partitions, the sealed file cache and connections
// need, naming the fix, rather than letting the node fail later on "too
// many open files" with some partitions open and others not.
func checkOpenFiles(dataDir string, soft uint64, sealedFiles int) error {
	need, partitions, err := openFilesNeeded(dataDir, sealedFiles)
	if err != nil {
		return fmt.Errorf("count the partitions in %s: %w", dataDir, err)
	}
	if soft >= need {
		return nil
	}
	return fmt.Errorf("%d partitions need about %d open files (%d each, %d for sealed segments being read (log.max.open.sealed.files), %d for connections), but the limit is %d: "+
		"raise the hard limit where sluice starts (ulimit -Hn %d in its shell, LimitNOFILE=%d in a systemd unit, nofile in /etc/security/limits.conf), "+
		"or lower log.max.open.sealed.files", partitions, need, filesPerPartition, sealedFiles, filesSpare, soft, need, need)
}
