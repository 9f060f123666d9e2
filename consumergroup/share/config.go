package share

import (
	"errors"
	"fmt"
	"time"
)

// Config is the broker-wide configuration of share-partitions and share
// sessions.
type Config struct {
	// MaxRecordLocks bounds the in-flight records (from the start offset
	// to the end offset) of one share-partition: once reached, no new
	// record is acquired until the start offset moves. It is checked
	// before each stored batch, so the batch crossing it is acquired
	// whole up to 8 times it (cut at it in record-limit mode,
	// AcquireRequest.Strict).
	// Corresponds to group.share.partition.max.record.locks; default
	// 2000.
	MaxRecordLocks int
	// MaxSessions bounds the share sessions this node holds; a new one
	// beyond it gets SHARE_SESSION_LIMIT_REACHED. Corresponds to
	// group.share.max.share.sessions; default 2000.
	MaxSessions int
	// PersistTimeout bounds the share coordinator's reads and writes
	// (and dead-letter writes) of one operation: a request or a lock
	// expiry. Past it the request fails with REQUEST_TIMED_OUT (the
	// persister retries an unavailable coordinator until then); default
	// 10 s.
	PersistTimeout time.Duration
	// IdleTimeout is how long a share-partition may go unused (no
	// ShareFetch, ShareAcknowledge or release touched it) while holding
	// no acquired record and no unstored change before it is dropped
	// from memory; the next use reads its stored state again. Default
	// 5 min.
	IdleTimeout time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{MaxRecordLocks: 2000, MaxSessions: 2000, PersistTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	var errs []error
	if c.MaxRecordLocks < 1 {
		errs = append(errs, fmt.Errorf("share: group.share.partition.max.record.locks must be at least 1, got %d", c.MaxRecordLocks))
	}
	if c.MaxSessions < 1 {
		errs = append(errs, fmt.Errorf("share: group.share.max.share.sessions must be at least 1, got %d", c.MaxSessions))
	}
	if c.PersistTimeout <= 0 {
		errs = append(errs, fmt.Errorf("share: persist timeout must be positive, got %s", c.PersistTimeout))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("share: idle timeout must be positive, got %s", c.IdleTimeout))
	}
	return errors.Join(errs...)
}
