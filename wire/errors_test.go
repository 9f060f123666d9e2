package wire

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluice-io/sluice/partition"
)

// TestErrorCode checks the one error → code mapping: a failed disk
// operation is KAFKA_STORAGE_ERROR (never UNKNOWN_SERVER_ERROR) and its log
// line names the file and the OS error.
func TestErrorCode(t *testing.T) {
	segment := "/data/topics/t-0/00000000000000000000.log"
	for _, tc := range []struct {
		name    string
		err     error
		want    int16
		logged  bool
		mention string
	}{
		{"nil", nil, 0, false, ""},
		{"protocol error", fmt.Errorf("topic t: %w", kerr.UnknownTopicOrPartition), kerr.UnknownTopicOrPartition.Code, false, ""},
		{"free space", fmt.Errorf("disk /data has 10 bytes free, below storage.min.free.bytes 100: %w", kerr.KafkaStorageError), kerr.KafkaStorageError.Code, false, ""},
		{"fsync", fmt.Errorf("sync log: %w", &iofs.PathError{Op: "fdatasync", Path: segment, Err: syscall.EIO}), kerr.KafkaStorageError.Code, true, segment},
		{"write", fmt.Errorf("append: %w", &iofs.PathError{Op: "write", Path: segment, Err: syscall.ENOSPC}), kerr.KafkaStorageError.Code, true, "no space left on device"},
		{"read", fmt.Errorf("read: %w", &iofs.PathError{Op: "read", Path: segment, Err: syscall.EIO}), kerr.KafkaStorageError.Code, true, "input/output error"},
		{"deadline", context.DeadlineExceeded, kerr.RequestTimedOut.Code, false, ""},
		{"closed", partition.ErrClosed, kerr.NotLeaderForPartition.Code, false, ""},
		{"bug", errors.New("something else"), kerr.UnknownServerError.Code, true, "something else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s := &Server{logger: zap.New(core)}
			if got := s.errorCode(tc.err); got != tc.want {
				t.Fatalf("errorCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
			entries := logs.All()
			if !tc.logged {
				if len(entries) != 0 {
					t.Fatalf("logged %v for an error the code explains", entries)
				}
				return
			}
			if len(entries) != 1 {
				t.Fatalf("logged %d lines, want 1", len(entries))
			}
			if line := fmt.Sprint(entries[0].ContextMap()); !strings.Contains(line, tc.mention) {
				t.Fatalf("log line %q does not mention %q", line, tc.mention)
			}
		})
	}
}
