package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/log"
)

// A data dir whose partitions need more open files than the limit is
// refused at start with the numbers and the fix; one within it is not, and
// the number of segments does not count.
func TestCheckOpenFiles(t *testing.T) {
	dir := t.TempDir()
	if err := checkOpenFiles(dir, 1024, 256); err != nil {
		t.Fatalf("an empty data dir: %v", err)
	}
	if err := checkOpenFiles(dir, 1024, 1024); err == nil || !strings.Contains(err.Error(), "log.max.open.sealed.files") {
		t.Fatalf("an empty data dir with a cache as large as the limit: %v", err)
	}
	for p := range 10 {
		pdir := filepath.Join(dir, "topics", fmt.Sprintf("t-%d", p))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for s := range 20 {
			for _, suffix := range []string{".log", ".index", ".timeindex"} {
				if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("%020d%s", s*100, suffix)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	need, partitions, err := openFilesNeeded(dir, 100)
	if err != nil || partitions != 10 || need != filesPerPartition*10+100+filesSpare {
		t.Fatalf("need %d for %d partitions (%v)", need, partitions, err)
	}
	err = checkOpenFiles(dir, need-1, 100)
	if err == nil || !strings.Contains(err.Error(), "10 partitions need about") || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Fatalf("limit below the need: %v", err)
	}
	if err := checkOpenFiles(dir, need, 100); err != nil {
		t.Fatalf("limit at the need: %v", err)
	}
}

// The cache limit is the configured one, else the default capped at a
// quarter of the open file limit.
func TestSealedFilesLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured int
		soft       uint64
		known      bool
		want       int
	}{
		{"configured", 50, 100, true, 50},
		{"default under a high limit", 0, 1 << 20, true, log.DefaultMaxOpenSealedFiles},
		{"a quarter of a low limit", 0, 1024, true, 256},
		{"limit unknown", 0, 0, false, log.DefaultMaxOpenSealedFiles},
		{"tiny limit", 0, 2, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sealedFilesLimit(tc.configured, tc.soft, tc.known); got != tc.want {
				t.Fatalf("sealedFilesLimit(%d, %d, %v) = %d, want %d", tc.configured, tc.soft, tc.known, got, tc.want)
			}
		})
	}
}
