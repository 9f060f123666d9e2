// Package configs knows Kafka's topic and broker configs as Sluice accepts
// them: their names, types, Kafka defaults and documentation (the tables
// topic.go and broker.go), how a value is validated, how the layers resolve
// into the partition.Config and cleaner.Config in force, what
// DescribeConfigs reports (Entry, with sources and synonyms), and how
// IncrementalAlterConfigs operations change a set (Op, ApplyOps). The
// GROUP resource's configs (group.go: share.record.lock.duration.ms,
// share.delivery.count.limit, share.auto.offset.reset,
// share.isolation.level, share.session.timeout.ms,
// share.heartbeat.interval.ms, errors.deadletterqueue.topic.name and
// .copy.record.enable) resolve into a ShareGroup (ResolveShareGroup): a
// group's own setting over the broker's defaults (the static
// group.share.record.lock.duration.ms, group.share.delivery.count.limit,
// group.share.session.timeout.ms and group.share.heartbeat.interval.ms)
// over Kafka's; the bounds Kafka's broker configs group.share.{min,max}.*
// put on them are fixed at Kafka's defaults. A group's dead-letter topic
// must also start with the broker config
// errors.deadletterqueue.topic.name.prefix (ValidateDeadLetterTopic,
// checked by the cluster, which knows the broker configs in force).
//
// It holds no state and does no I/O: the cluster (package replication)
// keeps the overrides and dynamic configs, persists them, and applies what
// ResolveTopic and Layers.Effective compute to its replicas and cleaner.
// Names are Kafka's, so kadm, kcat and kafka-configs work unchanged.
//
// # Layers
//
//	topic override  >  dynamic broker (this node > cluster default)  >  static  >  default
//	(retention.ms)     (log.retention.ms > .minutes > .hours, merged)    (file)     (Kafka's)
//
// Layers holds the static Broker (file, environment, flags) and the two
// dynamic maps; Effective applies the dynamic ones in table order, so
// within them Kafka's precedence holds (log.retention.ms over minutes over
// hours). A topic's partition config is the effective Broker's Partition
// with the topic's overrides applied, in table order (ResolveTopic).
//
// # Invariants
//
//   - Every topic config with an effect on the partition config has a
//     broker config holding its default (topicDefault panics at init
//     otherwise), and Kafka's default of every config validates (tested).
//     errors.deadletterqueue.group.enable (KIP-1191) has neither: the
//     dead-letter writer reads it from the topic's overrides.
//   - Validation looks at one value at a time (ValidateTopic,
//     ValidateBroker); checks across values are partition.Config.Validate's
//     and cleaner.Config.Validate's, reached through ResolveTopic and
//     Broker.Validate. Every error a client can cause is kerr.InvalidConfig
//     or kerr.InvalidRequest, with a message naming the config and the fix.
//   - The tables are read-only after init; every function is safe for
//     concurrent use.
//
// # Glossary
//
//   - override: a topic's own setting of a topic config (DYNAMIC_TOPIC_CONFIG).
//   - dynamic broker config: a broker config set at run time with
//     AlterConfigs on a BROKER resource, for this node or as the cluster
//     default ("" resource name).
//   - synonym: another name that sets the same thing
//     (log.retention.hours for retention.ms); DescribeConfigs lists them.
//
// # Non-obvious
//
//   - Some topic configs (flush.ms, preallocate, segment.jitter.ms, ...)
//     are accepted and validated for compatibility but have no effect;
//     their documentation says so. Ones that would mislead
//     (remote.storage.enable=true) are INVALID_CONFIG.
//   - Any dynamic retention setting wins over the static one: the static
//     config holds only the resolved duration, not which of
//     log.retention.ms/minutes/hours set it. Kafka would let a static
//     log.retention.ms win over a dynamic log.retention.hours.
//   - message.timestamp.difference.max.ms (deprecated, KIP-937) sets both
//     before.max and after.max, as in Kafka 3.6+; the specific configs win
//     over it because overrides are applied in table order.
//   - A broker synonym may be in other units (log.retention.hours): the
//     value DescribeConfigs reports for the config itself is the effective
//     one in its own unit.
package configs
