//go:build unix

package main

import (
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRaiseOpenFileLimit lowers this process's soft limit on open files,
// then checks raiseOpenFileLimit puts it back at the hard limit and logs
// both, with a warning when the hard limit is under recommendedOpenFiles.
func TestRaiseOpenFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
	if lim.Max < 512 {
		t.Skipf("hard limit %d is too low to lower the soft one", lim.Max)
	}
	low := lim
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	raiseOpenFileLimit(zap.New(core))
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if now.Cur != lim.Max {
		t.Errorf("soft limit %d after raising, want the hard limit %d", now.Cur, lim.Max)
	}
	info := logs.FilterMessage("open file limit").All()
	if len(info) != 1 || info[0].ContextMap()["soft"] != uint64(lim.Max) || info[0].ContextMap()["soft-at-start"] != uint64(256) {
		t.Errorf("logged %v, want one open file limit line with soft %d and soft-at-start 256", info, lim.Max)
	}
	warned := logs.FilterLevelExact(zap.WarnLevel).Len() > 0
	if want := lim.Max < recommendedOpenFiles; warned != want {
		t.Errorf("warned %v with hard limit %d, want %v", warned, lim.Max, want)
	}
}
