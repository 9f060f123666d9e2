package txn

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The states of a transactional id, with Kafka's names and numbers (as
// stored in TxnMetadataValue.State).
const (
	stateEmpty             = kmsg.TransactionState(0)
	stateOngoing           = kmsg.TransactionState(1)
	statePrepareCommit     = kmsg.TransactionState(2)
	statePrepareAbort      = kmsg.TransactionState(3)
	stateCompleteCommit    = kmsg.TransactionState(4)
	stateCompleteAbort     = kmsg.TransactionState(5)
	stateDead              = kmsg.TransactionState(6)
	statePrepareEpochFence = kmsg.TransactionState(7)
)

// validPrevious lists, for each state, the states a transactional id may
// move to it from (Kafka's TransactionState.validPreviousStates). Every
// change of state goes through transitionAllowed.
var validPrevious = map[kmsg.TransactionState][]kmsg.TransactionState{
	stateEmpty:         {stateEmpty, stateCompleteCommit, stateCompleteAbort},
	stateOngoing:       {stateOngoing, stateEmpty, stateCompleteCommit, stateCompleteAbort},
	statePrepareCommit: {stateOngoing},
	// From Empty and Complete*: the empty abort of transaction version 2
	// (KIP-890 part 2), as Kafka 4 allows.
	statePrepareAbort:      {stateOngoing, statePrepareEpochFence, stateEmpty, stateCompleteCommit, stateCompleteAbort},
	stateCompleteCommit:    {statePrepareCommit},
	stateCompleteAbort:     {statePrepareAbort},
	stateDead:              {stateEmpty, stateCompleteCommit, stateCompleteAbort},
	statePrepareEpochFence: {stateOngoing},
}

// transitionAllowed reports whether a transactional id in state from may
// move to state to.
func transitionAllowed(from, to kmsg.TransactionState) bool {
	return slices.Contains(validPrevious[to], from)
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// metadata is the state of one transactional id, Kafka's
// TransactionMetadata. Fields other than pending are what a
// TxnMetadataValue stores (lastProducerID and lastProducerEpoch only in
// memory, as in Kafka: a load starts them at -1).
type metadata struct {
	id            string
	producerID    int64
	producerEpoch int16
	// lastProducerID is the producer id the id had before its epoch was
	// exhausted and a new id handed out (-1: none), so that a producer
	// that missed the answer may retry (KIP-360).
	lastProducerID int64
	// lastProducerEpoch is the epoch before the last bump by
	// InitProducerId or by an EndTxn of transaction version 2 (-1: none,
	// or fenced by the coordinator), so that a retried InitProducerId or
	// EndTxn gets the same answer.
	lastProducerEpoch int16
	// endBumped is set while the transaction being completed, or last
	// completed, was ended by an EndTxn of transaction version 2
	// (KIP-890 part 2), which bumped the epoch: its markers carry the
	// bumped epoch, and a retry of that EndTxn with the epoch before the
	// bump (lastProducerEpoch, or lastProducerID's last epoch after an
	// overflow) gets the same answer. Stored as ClientTransactionVersion 2
	// (TxnMetadataValue v1).
	endBumped bool
	// nextProducerID is, in PrepareCommit or PrepareAbort, the producer id
	// the client continues with at epoch 0 once the transaction completes,
	// when the bump of a version 2 EndTxn exhausted the epoch; -1
	// otherwise. Stored as NextProducerID (TxnMetadataValue v1).
	nextProducerID int64
	timeout        time.Duration
	state          kmsg.TransactionState
	partitions     map[TopicPartition]struct{}
	// startTime is when the ongoing transaction began (zero: none).
	startTime  time.Time
	lastUpdate time.Time

	// pending is set while the record of a change of this id is being
	// made durable: requests for the id answer CONCURRENT_TRANSACTIONS
	// meanwhile (Kafka's pendingTransitionInProgress).
	pending bool
}

// clone returns a copy of m with its own partition set, not pending.
func (m *metadata) clone() *metadata {
	c := *m
	c.partitions = maps.Clone(m.partitions)
	if c.partitions == nil {
		c.partitions = map[TopicPartition]struct{}{}
	}
	c.pending = false
	return &c
}

// sortedPartitions returns m's partitions ordered by topic, then
// partition.
func (m *metadata) sortedPartitions() []TopicPartition {
	out := slices.Collect(maps.Keys(m.partitions))
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out
}

// startMillis is the transaction start time as Kafka reports it: -1
// when no transaction is under way.
func (m *metadata) startMillis() int64 {
	if m.startTime.IsZero() {
		return -1
	}
	return m.startTime.UnixMilli()
}

// epochExhausted is Kafka's TransactionMetadata.isEpochExhausted: an
// epoch this high cannot be bumped twice more (once by InitProducerId,
// once by a fence), so the id gets a new producer id instead.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// completes reports whether s ends a transaction (the markers are
// written).
func completes(s kmsg.TransactionState) bool {
	return s == stateCompleteCommit || s == stateCompleteAbort
}

// preparing reports whether s is a transaction whose markers are being
// written.
func preparing(s kmsg.TransactionState) bool {
	return s == statePrepareCommit || s == statePrepareAbort
}
