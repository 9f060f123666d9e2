package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data dir whose segments need more open files than the limit is
// refused at start with the numbers and the fix; one within it is not.
func TestCheckOpenFiles(t *testing.T) {
	dir := t.TempDir()
	if err := checkOpenFiles(dir, 1024); err != nil {
		t.Fatalf("an empty data dir: %v", err)
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
	need, partitions, segments, err := openFilesNeeded(dir)
	if err != nil || partitions != 10 || segments != 200 || need != 3*200+filesPerPartition*10+filesSpare {
		t.Fatalf("need %d for %d partitions, %d segments (%v)", need, partitions, segments, err)
	}
	err = checkOpenFiles(dir, need-1)
	if err == nil || !strings.Contains(err.Error(), "10 partitions with 200 segments") || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Fatalf("limit below the need: %v", err)
	}
	if err := checkOpenFiles(dir, need); err != nil {
		t.Fatalf("limit at the need: %v", err)
	}
}
