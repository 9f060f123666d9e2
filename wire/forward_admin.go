package wire

// Forwarding of the admin APIs the metadata leader alone performs. Each
// handler answers what it can here (validation, and everything on the
// leader); the items answered NOT_CONTROLLER go to the leader in one
// request of the same API, and its answers replace them, item by item.
// Creates, deletes and added partitions are then awaited in this node's
// view (bounded by the same timeout), so a client that changes a topic
// through a follower finds the change there when the answer arrives.
// Config changes are not awaited: the follower's view follows within a
// heartbeat or two.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errWrongAnswer reports a leader's answer that does not match the
// forwarded request item for item.
func errWrongAnswer(api string, got, want int) error {
	return fmt.Errorf("forward %s: the leader answered %d items for %d: %w", api, got, want, kerr.UnknownServerError)
}

// forwardSpec describes the forwarding of one admin request whose items
// (topics, resources, entries) are answered one by one; A is the
// response's item type.
type forwardSpec[A any] struct {
	api string
	// timeoutMillis is the request's timeout (0: none given).
	timeoutMillis int32
	// answers are the response's items, the request's in the same order;
	// the leader's answers are written over the forwarded ones in place.
	answers []A
	code    func(A) int16
	// build returns the request of the same API that carries the items
	// at idx.
	build     func(idx []int) kmsg.Request
	answersOf func(kmsg.Response) []A
	// merge puts the leader's answer src over dst; nil replaces it.
	merge func(dst *A, src A)
	// after, if set, runs once the answers are in place, within the
	// forward's deadline (to await the change in this node's view).
	after func(ctx context.Context, idx []int)
}

// forwardItems forwards the items answered NOT_CONTROLLER to the metadata
// leader in one request of the same API and puts its answers in their
// place. Without a leader to forward to, or when the forward fails, the
// items keep NOT_CONTROLLER, which clients retry.
func forwardItems[A any](s *Server, ctx context.Context, f forwardSpec[A]) {
	idx := notControllerItems(len(f.answers), func(i int) int16 { return f.code(f.answers[i]) })
	leader, ok := s.forwardTarget(ctx)
	if len(idx) == 0 || !ok {
		return
	}
	ctx, cancel := s.forwardContext(ctx, f.timeoutMillis)
	defer cancel()
	kresp, err := s.forward(ctx, leader, f.build(idx))
	if err != nil {
		s.forwardFailed(err)
		return
	}
	got := f.answersOf(kresp)
	if len(got) != len(idx) {
		s.forwardFailed(errWrongAnswer(f.api, len(got), len(idx)))
		return
	}
	for j, i := range idx {
		if f.merge != nil {
			f.merge(&f.answers[i], got[j])
		} else {
			f.answers[i] = got[j]
		}
	}
	if f.after != nil {
		f.after(ctx, idx)
	}
}

// forwardCreateTopics forwards the topics of req answered NOT_CONTROLLER
// in resp and waits until the created ones are in this node's view.
func (s *Server) forwardCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest, resp *kmsg.CreateTopicsResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.CreateTopicsResponseTopic]{
		api: "CreateTopics", timeoutMillis: req.TimeoutMillis, answers: resp.Topics,
		code: func(t kmsg.CreateTopicsResponseTopic) int16 { return t.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrCreateTopicsRequest()
			fwd.TimeoutMillis, fwd.ValidateOnly = req.TimeoutMillis, req.ValidateOnly
			for _, i := range idx {
				fwd.Topics = append(fwd.Topics, req.Topics[i])
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.CreateTopicsResponseTopic { return r.(*kmsg.CreateTopicsResponse).Topics },
		after: func(ctx context.Context, idx []int) {
			if req.ValidateOnly {
				return
			}
			err := s.cluster.WaitView(ctx, func() bool {
				for _, i := range idx {
					st := resp.Topics[i]
					if st.ErrorCode != 0 {
						continue
					}
					t, ok := s.cluster.Topic(st.Topic)
					if !ok || st.TopicID != [16]byte{} && t.ID() != st.TopicID {
						return false
					}
				}
				return true
			})
			if err != nil {
				s.logger.Debug("forwarded topic creation not seen here yet")
			}
		},
	})
}

// forwardDeleteTopics forwards the topics of targets (the request's, by
// name or id) answered NOT_CONTROLLER in resp and waits until the deleted
// ones are gone from this node's view.
func (s *Server) forwardDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest, targets []kmsg.DeleteTopicsRequestTopic, resp *kmsg.DeleteTopicsResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.DeleteTopicsResponseTopic]{
		api: "DeleteTopics", timeoutMillis: req.TimeoutMillis, answers: resp.Topics,
		code: func(t kmsg.DeleteTopicsResponseTopic) int16 { return t.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrDeleteTopicsRequest()
			fwd.TimeoutMillis = req.TimeoutMillis
			for _, i := range idx {
				// Resolved here: the leader gets the name and the id.
				t := kmsg.NewDeleteTopicsRequestTopic()
				t.Topic, t.TopicID = resp.Topics[i].Topic, resp.Topics[i].TopicID
				if t.Topic == nil {
					t.Topic = targets[i].Topic
				}
				fwd.Topics = append(fwd.Topics, t)
				if t.Topic != nil {
					fwd.TopicNames = append(fwd.TopicNames, *t.Topic)
				}
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.DeleteTopicsResponseTopic { return r.(*kmsg.DeleteTopicsResponse).Topics },
		merge: func(st *kmsg.DeleteTopicsResponseTopic, ft kmsg.DeleteTopicsResponseTopic) {
			st.ErrorCode, st.ErrorMessage = ft.ErrorCode, ft.ErrorMessage
			if ft.TopicID != [16]byte{} {
				st.TopicID = ft.TopicID
			}
		},
		after: func(ctx context.Context, idx []int) {
			err := s.cluster.WaitView(ctx, func() bool {
				for _, i := range idx {
					st := resp.Topics[i]
					if st.ErrorCode != 0 || st.Topic == nil {
						continue
					}
					if t, ok := s.cluster.Topic(*st.Topic); ok && (st.TopicID == [16]byte{} || t.ID() == st.TopicID) {
						return false
					}
				}
				return true
			})
			if err != nil {
				s.logger.Debug("forwarded topic deletion not seen here yet")
			}
		},
	})
}

// forwardCreatePartitions forwards the topics of req answered
// NOT_CONTROLLER in resp and waits until this node's view has their new
// partitions.
func (s *Server) forwardCreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest, resp *kmsg.CreatePartitionsResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.CreatePartitionsResponseTopic]{
		api: "CreatePartitions", timeoutMillis: req.TimeoutMillis, answers: resp.Topics,
		code: func(t kmsg.CreatePartitionsResponseTopic) int16 { return t.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrCreatePartitionsRequest()
			fwd.TimeoutMillis, fwd.ValidateOnly = req.TimeoutMillis, req.ValidateOnly
			for _, i := range idx {
				fwd.Topics = append(fwd.Topics, req.Topics[i])
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.CreatePartitionsResponseTopic {
			return r.(*kmsg.CreatePartitionsResponse).Topics
		},
		after: func(ctx context.Context, idx []int) {
			if req.ValidateOnly {
				return
			}
			err := s.cluster.WaitView(ctx, func() bool {
				for _, i := range idx {
					if resp.Topics[i].ErrorCode != 0 {
						continue
					}
					if t, ok := s.cluster.Topic(req.Topics[i].Topic); ok && t.PartitionCount() < req.Topics[i].Count {
						return false
					}
				}
				return true
			})
			if err != nil {
				s.logger.Debug("forwarded partition creation not seen here yet")
			}
		},
	})
}

// forwardAlterConfigs forwards the resources of req answered
// NOT_CONTROLLER in resp.
func (s *Server) forwardAlterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest, resp *kmsg.AlterConfigsResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.AlterConfigsResponseResource]{
		api: "AlterConfigs", answers: resp.Resources,
		code: func(r kmsg.AlterConfigsResponseResource) int16 { return r.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrAlterConfigsRequest()
			fwd.ValidateOnly = req.ValidateOnly
			for _, i := range idx {
				fwd.Resources = append(fwd.Resources, req.Resources[i])
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.AlterConfigsResponseResource {
			return r.(*kmsg.AlterConfigsResponse).Resources
		},
	})
}

// forwardIncrementalAlterConfigs forwards the resources of req answered
// NOT_CONTROLLER in resp.
func (s *Server) forwardIncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest, resp *kmsg.IncrementalAlterConfigsResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.IncrementalAlterConfigsResponseResource]{
		api: "IncrementalAlterConfigs", answers: resp.Resources,
		code: func(r kmsg.IncrementalAlterConfigsResponseResource) int16 { return r.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrIncrementalAlterConfigsRequest()
			fwd.ValidateOnly = req.ValidateOnly
			for _, i := range idx {
				fwd.Resources = append(fwd.Resources, req.Resources[i])
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.IncrementalAlterConfigsResponseResource {
			return r.(*kmsg.IncrementalAlterConfigsResponse).Resources
		},
	})
}

// forwardAlterClientQuotas forwards the entries of req answered
// NOT_CONTROLLER in resp (the valid ones, applied together on the leader).
func (s *Server) forwardAlterClientQuotas(ctx context.Context, req *kmsg.AlterClientQuotasRequest, resp *kmsg.AlterClientQuotasResponse) {
	forwardItems(s, ctx, forwardSpec[kmsg.AlterClientQuotasResponseEntry]{
		api: "AlterClientQuotas", answers: resp.Entries,
		code: func(e kmsg.AlterClientQuotasResponseEntry) int16 { return e.ErrorCode },
		build: func(idx []int) kmsg.Request {
			fwd := kmsg.NewPtrAlterClientQuotasRequest()
			fwd.ValidateOnly = req.ValidateOnly
			for _, i := range idx {
				fwd.Entries = append(fwd.Entries, req.Entries[i])
			}
			return fwd
		},
		answersOf: func(r kmsg.Response) []kmsg.AlterClientQuotasResponseEntry {
			return r.(*kmsg.AlterClientQuotasResponse).Entries
		},
	})
}

// forwardAutoCreate creates topic name with the broker defaults through
// the metadata leader (Metadata's auto-create on a follower) and returns
// it once this node's view has it. No leader known, a failed forward, or
// a topic not visible here in time is LEADER_NOT_AVAILABLE, which clients
// retry, as Kafka answers the Metadata that starts an auto-create; an
// error of the leader (a bad config default, say) is its own.
func (s *Server) forwardAutoCreate(ctx context.Context, name string, notLeader error) (Topic, error) {
	leader, ok := s.forwardTarget(ctx)
	if !ok {
		return nil, fmt.Errorf("%v: %w", notLeader, kerr.LeaderNotAvailable)
	}
	ctx, cancel := s.forwardContext(ctx, 0)
	defer cancel()
	fwd := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, -1, -1
	fwd.Topics = append(fwd.Topics, t)
	fwd.TimeoutMillis = int32(defaultForwardTimeout.Milliseconds())
	kresp, err := s.forward(ctx, leader, fwd)
	if err != nil {
		return nil, fmt.Errorf("auto-create %q: %v: %w", name, err, kerr.LeaderNotAvailable)
	}
	fresp := kresp.(*kmsg.CreateTopicsResponse)
	if len(fresp.Topics) != 1 {
		return nil, fmt.Errorf("auto-create %q: %v: %w", name, errWrongAnswer("CreateTopics", len(fresp.Topics), 1), kerr.LeaderNotAvailable)
	}
	if err := kerr.ErrorForCode(fresp.Topics[0].ErrorCode); err != nil && err != kerr.TopicAlreadyExists {
		return nil, err
	}
	var found Topic
	err = s.cluster.WaitView(ctx, func() bool {
		found, ok = s.cluster.Topic(name)
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("topic %q created by the metadata leader is not visible here yet: %w", name, kerr.LeaderNotAvailable)
	}
	return found, nil
}
