package admin

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-io/sluice/log"
)

func TestFileCacheCollector(t *testing.T) {
	c := NewFileCacheCollector(func() log.FileCacheStats {
		return log.FileCacheStats{Open: 3, Limit: 16, Opens: 40, Evictions: 37}
	})
	want := `
# HELP sluice_log_sealed_file_evictions_total Sealed segment files closed to stay within the limit.
# TYPE sluice_log_sealed_file_evictions_total counter
sluice_log_sealed_file_evictions_total 37
# HELP sluice_log_sealed_file_opens_total Sealed segment files opened because a read found them closed.
# TYPE sluice_log_sealed_file_opens_total counter
sluice_log_sealed_file_opens_total 40
# HELP sluice_log_sealed_files_limit Most sealed segment files the cache keeps open (log.max.open.sealed.files in force).
# TYPE sluice_log_sealed_files_limit gauge
sluice_log_sealed_files_limit 16
# HELP sluice_log_sealed_files_open Sealed segment .log files the file cache holds open.
# TYPE sluice_log_sealed_files_open gauge
sluice_log_sealed_files_open 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
