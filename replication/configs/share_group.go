package configs

import "time"

// ShareGroup is the configuration in force for one share group (KIP-932,
// KIP-1191): the group's own configs (GROUP resource) over the broker's
// defaults.
type ShareGroup struct {
	// RecordLockDuration is how long an acquired record stays locked to
	// its consumer before it is available again
	// (share.record.lock.duration.ms).
	RecordLockDuration time.Duration
	// DeliveryCountLimit is the number of deliveries after which a
	// record not accepted is archived, or dead-lettered
	// (share.delivery.count.limit).
	DeliveryCountLimit int
	// AutoOffsetReset is where a share-partition starts when first read:
	// "earliest", "latest", or "by_duration:<ISO-8601 duration>"
	// (share.auto.offset.reset).
	AutoOffsetReset string
	// ResetDuration is the duration of a by_duration reset, else 0.
	ResetDuration time.Duration
	// ReadCommitted delivers only committed transactional records
	// (share.isolation.level=read_committed).
	ReadCommitted bool
	// DeadLetterTopic names the topic rejected and exhausted records are
	// written to (errors.deadletterqueue.topic.name); "" archives them.
	DeadLetterTopic string
	// DeadLetterCopyRecord copies the record's key, value and headers
	// into the dead letter; otherwise it carries only the provenance
	// headers (errors.deadletterqueue.copy.record.enable).
	DeadLetterCopyRecord bool
	// SessionTimeout is how long the group coordinator waits for a
	// member's heartbeat before removing it (share.session.timeout.ms);
	// 0 when neither the group nor the broker defaults set it: the group
	// coordinator's group.share.session.timeout.ms applies.
	SessionTimeout time.Duration
	// HeartbeatInterval is the heartbeat interval told to members
	// (share.heartbeat.interval.ms); 0 when neither the group nor the
	// broker defaults set it: the group coordinator's
	// group.share.heartbeat.interval.ms applies.
	HeartbeatInterval time.Duration
}

// DefaultShareGroup returns Kafka's defaults: a 30 s lock, 5 deliveries,
// latest, read_uncommitted, no dead-letter topic, and the broker's
// session timeout and heartbeat interval.
func DefaultShareGroup() ShareGroup {
	return ShareGroup{
		RecordLockDuration: 30 * time.Second,
		DeliveryCountLimit: 5,
		AutoOffsetReset:    "latest",
	}
}
