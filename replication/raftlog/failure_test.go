package raftlog

import (
	"errors"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/log"
)

// TestStoreFailureIsSticky: a write or fsync failure of the segments or
// the sidecar fails the store for good (fsyncgate: a failed fsync is
// never retried as if the data were safe), OnFailure hears of it once,
// and a restart recovers every entry stored before it.
func TestStoreFailureIsSticky(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault log.Fault
	}{
		{"segment fsync", log.Fault{Ops: log.FaultSync, PathContains: ".log", Err: syscall.EIO}},
		{"segment write", log.Fault{Ops: log.FaultWrite, PathContains: ".log", Err: syscall.ENOSPC}},
		{"sidecar fsync", log.Fault{Ops: log.FaultSync, PathContains: SidecarFile, Err: syscall.EIO}},
		{"sidecar write", log.Fault{Ops: log.FaultWrite, PathContains: SidecarFile, Err: syscall.ENOSPC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := log.NewMemFS()
			fs := log.NewFaultFS(mem)
			l := openLog(t, fs, "/p")
			var told []error
			s, err := Open("/p", l, Options{FS: fs, OnFailure: func(err error) { told = append(told, err) }})
			if err != nil {
				t.Fatal(err)
			}
			m := newModel()
			m.store(t, s, l, conf(1, 1, "servers"), cmd(2, 1, 2, "a"), cmd(3, 1, 1, "b"))

			fs.Inject(tc.fault)
			err = s.StoreLogs([]*raft.Log{noop(4, 2), cmd(5, 2, 1, "lost")})
			if !errors.Is(err, tc.fault.Err) || !log.IsStorageError(err) {
				t.Fatalf("StoreLogs on a failing disk: %v, want a storage error wrapping %v", err, tc.fault.Err)
			}
			m.check(t, s) // nothing of the failed call is held
			if got := s.Failed(); !errors.Is(got, tc.fault.Err) {
				t.Fatalf("Failed() = %v, want %v", got, tc.fault.Err)
			}
			if len(told) != 1 {
				t.Fatalf("OnFailure called %d times, want once", len(told))
			}

			// The disk answers again: the store still refuses to write.
			fs.Clear()
			if err := s.StoreLogs([]*raft.Log{noop(4, 3)}); !errors.Is(err, tc.fault.Err) {
				t.Fatalf("StoreLogs after the disk recovered: %v, want the sticky failure", err)
			}
			if err := s.DeleteRange(3, 3); !errors.Is(err, tc.fault.Err) {
				t.Fatalf("DeleteRange after a failure: %v, want the sticky failure", err)
			}
			if err := s.Reset(10); !errors.Is(err, tc.fault.Err) {
				t.Fatalf("Reset after a failure: %v, want the sticky failure", err)
			}
			if len(told) != 1 {
				t.Fatalf("OnFailure called %d times, want once", len(told))
			}
			// Reads still work: a leader's followers may still be served
			// while it steps down.
			var got raft.Log
			if err := s.GetLog(2, &got); err != nil {
				t.Fatalf("GetLog(2) of a failed store: %v", err)
			}

			// A restart (with or without the unsynced bytes) recovers
			// every entry stored before the failure; what the failed call
			// left is at most a suffix Raft never acknowledged.
			for _, keep := range []int{0, 1 << 30} {
				clone := mem.CrashCloneWith(func(string, int) int { return keep })
				cs, cl := openStore(t, clone, "/p")
				first, _ := cs.FirstIndex()
				last, _ := cs.LastIndex()
				if first != 1 || last < 3 || last > 5 {
					t.Fatalf("after a restart (keep %d) the store holds [%d, %d], want [1, 3..5]", keep, first, last)
				}
				for i := uint64(1); i <= 3; i++ {
					var e raft.Log
					if err := cs.GetLog(i, &e); err != nil || e.Term != m.entries[i].Term || e.Type != m.entries[i].Type {
						t.Fatalf("after a restart (keep %d) entry %d: %+v, %v; want term %d type %v", keep, i, e, err, m.entries[i].Term, m.entries[i].Type)
					}
				}
				closeStore(t, cs, cl)
			}
			_ = s.Close()
		})
	}
}

// TestRewriteFailureIsReported: Reset rewrites the sidecar through a
// temporary file; a write or fsync of that file failing fails the call
// (and the store) instead of renaming an unsynced or short file over the
// sidecar.
func TestRewriteFailureIsReported(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault log.Fault
	}{
		{"tmp fsync", log.Fault{Ops: log.FaultSync, PathContains: SidecarFile + ".tmp", Err: syscall.EIO}},
		{"tmp write", log.Fault{Ops: log.FaultWrite, PathContains: SidecarFile + ".tmp", Err: syscall.ENOSPC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := log.NewMemFS()
			fs := log.NewFaultFS(mem)
			l := openLog(t, fs, "/p")
			s, err := Open("/p", l, Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			m := newModel()
			m.store(t, s, l, conf(1, 1, "servers"), cmd(2, 1, 2, "a"))
			fs.Inject(tc.fault)
			if err := s.Reset(10); !errors.Is(err, tc.fault.Err) {
				t.Fatalf("Reset with a failing %s: %v, want %v", tc.name, err, tc.fault.Err)
			}
			if got := s.Failed(); !errors.Is(got, tc.fault.Err) {
				t.Fatalf("Failed() = %v, want %v", got, tc.fault.Err)
			}
		})
	}
}
