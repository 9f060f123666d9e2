package wire

// ListPartitionReassignments (key 46), versions 0-0.
//
// Lists the reassignments in progress (KIP-455): each partition's
// replicas (the target first, then those leaving) and the replicas being
// added and removed. Null topics means every partition; otherwise only
// the partitions named, and a named partition with no reassignment in
// progress (or that does not exist) is left out, as Kafka does. Only the
// metadata leader answers: elsewhere the error is NOT_CONTROLLER.
//
// Version notes: v0 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListPartitionReassignments(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	all, err := s.cluster.Reassignments()
	if err != nil {
		resp.ErrorCode = s.errorCode(err)
		resp.ErrorMessage = errorMessage(err)
		return reply{resp: resp}
	}
	var wanted map[string]map[int32]bool
	if req.Topics != nil {
		wanted = make(map[string]map[int32]bool, len(req.Topics))
		for _, rt := range req.Topics {
			if wanted[rt.Topic] == nil {
				wanted[rt.Topic] = map[int32]bool{}
			}
			for _, p := range rt.Partitions {
				wanted[rt.Topic][p] = true
			}
		}
	}
	index := map[string]int{}
	for _, r := range all {
		if wanted != nil && !wanted[r.Topic][r.Partition] {
			continue
		}
		i, ok := index[r.Topic]
		if !ok {
			st := kmsg.NewListPartitionReassignmentsResponseTopic()
			st.Topic = r.Topic
			resp.Topics = append(resp.Topics, st)
			i = len(resp.Topics) - 1
			index[r.Topic] = i
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition = r.Partition
		sp.Replicas = orEmpty(r.Replicas)
		sp.AddingReplicas = orEmpty(r.Adding)
		sp.RemovingReplicas = orEmpty(r.Removing)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
	}
	return reply{resp: resp}
}

// orEmpty returns s, or an empty slice for nil: the arrays are not
// nullable in the protocol.
func orEmpty(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
