package log

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"syscall"
	"testing"
)

// TestFaultFSFailsMatchingOperations checks that an injected fault fails
// exactly the operations and paths it names, with an error IsStorageError
// recognises, and that Clear lifts it.
func TestFaultFSFailsMatchingOperations(t *testing.T) {
	fs := NewFaultFS(NewMemFS())
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	a, err := fs.OpenFile("/d/a.log", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.OpenFile("/d/b.log", true)
	if err != nil {
		t.Fatal(err)
	}
	fs.Inject(Fault{Ops: FaultWrite | FaultSync, PathContains: "a.log", Err: syscall.ENOSPC})

	if _, err := a.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.ENOSPC) || !IsStorageError(err) {
		t.Fatalf("write of a faulty file: %v, want ENOSPC storage error", err)
	}
	if err := a.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("sync of a faulty file: %v, want ENOSPC", err)
	}
	if _, err := a.ReadAt(make([]byte, 0), 0); err != nil {
		t.Fatalf("read of a file faulty for writes only: %v", err)
	}
	if _, err := b.WriteAt([]byte("x"), 0); err != nil {
		t.Fatalf("write of another file: %v", err)
	}
	fs.Clear()
	if _, err := a.WriteAt([]byte("x"), 0); err != nil {
		t.Fatalf("write after Clear: %v", err)
	}
}

// TestLogSyncFailureIsSticky checks the fsyncgate rule on a real Log: once
// fsync failed, the log refuses appends and syncs even after the disk
// recovers, and the error names the file and the OS error.
func TestLogSyncFailureIsSticky(t *testing.T) {
	fs := NewFaultFS(NewMemFS())
	l := openLog(t, fs, "/p", testConfig(), Options{})
	appendN(t, l, 3, 2, 10)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := l.SyncedOffset()
	appendN(t, l, 1, 2, 10)
	fs.Inject(Fault{Ops: FaultSync, Err: syscall.EIO})
	err := l.Sync()
	if !errors.Is(err, syscall.EIO) || !IsStorageError(err) {
		t.Fatalf("Sync on a failing disk: %v, want an EIO storage error", err)
	}
	var pathErr *iofs.PathError
	if !errors.As(err, &pathErr) || pathErr.Path == "" {
		t.Fatalf("Sync error %v names no file", err)
	}
	fs.Clear()
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync after the disk recovered: %v, want the sticky EIO", err)
	}
	if err := l.Append(simpleBatch(l.NextOffset(), 1, 10)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after a failed sync: %v, want the sticky EIO", err)
	}
	if got := l.SyncedOffset(); got != synced {
		t.Fatalf("SyncedOffset = %d after a failed sync, want %d", got, synced)
	}
}

func TestIsStorageError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"path error", fmt.Errorf("append: %w", &iofs.PathError{Op: "write", Path: "/x", Err: syscall.EIO}), true},
		{"errno", fmt.Errorf("statfs: %w", syscall.ENOSPC), true},
		{"syscall error", os.NewSyscallError("fdatasync", syscall.EIO), true},
		{"link error", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EROFS}, true},
		{"closed file", &iofs.PathError{Op: "read", Path: "/x", Err: iofs.ErrClosed}, false},
		{"corrupt batch", ErrCorrupt, false},
		{"closed log", ErrClosed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsStorageError(tc.err); got != tc.want {
				t.Fatalf("IsStorageError(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
