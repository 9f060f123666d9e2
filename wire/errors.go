package wire

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// errorCode turns an error from a lower package into the Kafka error code
// the client gets. A *kerr.Error gives its own code; shutdown and closed
// partitions are retriable NOT_LEADER_OR_FOLLOWER so clients refresh
// metadata and retry; a deadline is REQUEST_TIMED_OUT; a failed disk
// operation (log.IsStorageError: open, read, write, fsync of a
// partition's files) is KAFKA_STORAGE_ERROR, retriable, as Kafka answers
// for an offline log directory, and is logged with the file and the OS
// error; anything else is UNKNOWN_SERVER_ERROR and is logged, because it
// is our fault, not the client's.
func (s *Server) errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, context.Canceled), errors.Is(err, partition.ErrClosed), errors.Is(err, replication.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	case log.IsStorageError(err):
		s.logger.Error("storage error", zap.Error(err))
		return kerr.KafkaStorageError.Code
	}
	s.logger.Error("request failed", zap.Error(err))
	return kerr.UnknownServerError.Code
}

// errorMessage returns the human part of an error for the ErrorMessage
// fields of responses, or nil when the code says it all.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return nil
	}
	msg := strings.TrimSuffix(err.Error(), ": "+ke.Error())
	if msg == ke.Error() || msg == "" {
		return nil
	}
	return &msg
}
