// Package sharestate is the durable state of share groups' partitions
// (KIP-932): for each share-partition (a share group's view of one topic
// partition) its start offset and the delivery state of its in-flight
// records, kept by the share coordinator in the internal compacted topic
// __share_group_state so that it survives restarts and moves with
// leadership.
//
// The data partition's leader holds the live share-partition (which
// records are acquired, by whom, until when: package consumergroup/share)
// and writes every durable change here through the Persister before it
// answers the client. The share coordinator of a key is the leader of
// __share_group_state partition hash(key) mod N; Persister hides whether
// that is this node or another (the Kafka RPCs InitializeShareGroupState,
// ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState and
// ReadShareGroupStateSummary between nodes).
//
// # Fencing
//
//   - StateEpoch: Initialize sets a new, higher state epoch (an
//     administrative reset or delete does too); a Write carrying another
//     state epoch is FENCED_STATE_EPOCH, and the writer reloads.
//   - LeaderEpoch: Read and Write carry the data partition leader's epoch;
//     one older than the last stored is FENCED_LEADER_EPOCH, so a deposed
//     leader cannot overwrite its successor's state.
package sharestate
