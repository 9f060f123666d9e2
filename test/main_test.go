package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the sluice binary built for this test binary's subprocess
// tests; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	if port := os.Getenv(kfakeListenEnv); port != "" {
		os.Exit(runKfake(port))
	}
	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sluiceBinary builds ./cmd/sluice once per test binary and returns its
// path.
func sluiceBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "sluice")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/sluice-io/sluice/cmd/sluice")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}
