package txn

import (
	"context"
	"errors"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// DescribeTransactions describes each transactional id of the request:
// its state, timeout, transaction start time (-1: none), producer id and
// epoch and the partitions of its transaction; TRANSACTIONAL_ID_NOT_FOUND
// for an id this coordinator does not know, NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS for one it does not coordinate (now).
func (c *Coordinator) DescribeTransactions(ctx context.Context, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		if code := c.lockID(id); code != 0 {
			st.ErrorCode = code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		m := c.txns[id]
		if m == nil {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		} else {
			st.State = m.state.String()
			st.TimeoutMillis = int32(m.timeout.Milliseconds())
			st.StartTimestamp = m.startMillis()
			st.ProducerID, st.ProducerEpoch = m.producerID, m.producerEpoch
			for _, tp := range m.sortedPartitions() {
				if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = tp.Topic
					st.Topics = append(st.Topics, t)
				}
				t := &st.Topics[len(st.Topics)-1]
				t.Partitions = append(t.Partitions, tp.Partition)
			}
		}
		c.mu.Unlock()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// ListTransactions lists the transactional ids this node coordinates,
// filtered by state names (unknown names are returned in
// UnknownStateFilters and match nothing), producer ids, (v1+) a minimum
// running time and (v2+) a regular expression on the id
// (INVALID_REGULAR_EXPRESSION when it does not compile). While one of
// this node's partitions is loading the answer is
// COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) ListTransactions(ctx context.Context, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	known := kmsg.TransactionStateStrings()
	for _, s := range req.StateFilters {
		if slices.Contains(known, s) {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return resp
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := int32(0); p < c.partitions; p++ {
		if c.coordinatorLocked(p) == kerr.CoordinatorLoadInProgress.Code {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			return resp
		}
	}
	now := c.now().UnixMilli()
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := c.txns[id]
		switch {
		case m.state == stateDead:
			continue
		case len(states) > 0 && !states[m.state.String()]:
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, m.producerID):
			continue
		case req.Version >= 1 && req.DurationFilterMillis >= 0 && now-m.startMillis() <= req.DurationFilterMillis:
			continue
		case pattern != nil && !pattern.MatchString(id):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = id, m.producerID, m.state.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// FindCoordinator answers for transactional ids (key type 1): the node
// leading the id's partition of __transaction_state, with its Kafka
// address; COORDINATOR_NOT_AVAILABLE while no leader is known or the
// failure detector holds the leader down (replication.Broker.Down), as
// Kafka never names a fenced broker: clients retry. Handles batched keys
// (v4+).
func (c *Coordinator) FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	return consumergroup.AnswerFindCoordinator(req, StateTopic, c.cluster.Brokers(), func(key string) (int32, int32, error) {
		if key == "" {
			return 0, -1, errors.New("empty transactional id")
		}
		p := c.partitionFor(key)
		leader := int32(-1)
		if h := c.handle(p); h != nil {
			leader, _ = h.Leader()
		}
		return p, leader, nil
	})
}
