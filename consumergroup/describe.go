package consumergroup

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// groupType is the only group type Sluice has (KIP-848's "consumer"
// groups are not implemented).
const groupType = "classic"

// authorizedGroupOperations is READ, DELETE and DESCRIBE (bits 3, 6, 8 of
// Kafka's AclOperation): without ACLs every client may do all of them.
const authorizedGroupOperations = 1<<3 | 1<<6 | 1<<8

// ListGroups lists groups, filtered by state (v4+) and type (v5+), both
// case-insensitively. Only "classic" groups exist. While some partition
// still loads, the groups already loaded are listed and the error is
// COORDINATOR_LOAD_IN_PROGRESS, as Kafka.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if !c.enter() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	defer c.wg.Done()
	for i := range c.loaded {
		if !c.loaded[i].Load() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			break
		}
	}
	if req.Version >= 5 && len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, groupType) {
		return resp
	}
	for _, g := range c.snapshot() {
		g.mu.Lock()
		state, protocolType := g.state, g.protocolType
		g.mu.Unlock()
		if state == stateDead {
			continue
		}
		if req.Version >= 4 && len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, state.String()) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState, sg.GroupType = g.id, protocolType, state.String(), groupType
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// DescribeGroups describes groups: state, protocol, members and their
// assignments.
//
// Member metadata and assignments are shown only for Stable groups, and
// the protocol only then, as Kafka. An unknown group is described as
// "Dead" with no members; from v6 on it is GROUP_ID_NOT_FOUND.
// AuthorizedOperations (v3+) is READ|DELETE|DESCRIBE when asked for,
// else -2147483648.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	open := c.enter()
	if open {
		defer c.wg.Done()
	}
	for _, id := range req.Groups {
		sg := kmsg.NewDescribeGroupsResponseGroup()
		sg.Group = id
		if req.IncludeAuthorizedOperations {
			sg.AuthorizedOperations = authorizedGroupOperations
		}
		switch {
		case !open:
			sg.ErrorCode = kerr.NotCoordinator.Code
		case c.isLoading(id):
			sg.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		default:
			c.describe(req.Version, id, &sg)
		}
		if req.Version >= 6 && sg.ErrorCode != 0 {
			msg := kerr.ErrorForCode(sg.ErrorCode).(*kerr.Error).Description
			if sg.ErrorCode == kerr.GroupIDNotFound.Code {
				msg = "Group " + id + " not found."
			}
			sg.ErrorMessage = &msg
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) describe(version int16, id string, sg *kmsg.DescribeGroupsResponseGroup) {
	sg.State = stateDead.String()
	g := c.lockLive(id, false)
	if g == nil {
		if version >= 6 {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
		}
		return
	}
	defer g.mu.Unlock()
	sg.State = g.state.String()
	sg.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		sg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		sm := kmsg.NewDescribeGroupsResponseGroupMember()
		sm.MemberID, sm.InstanceID, sm.ClientID, sm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		sm.ProtocolMetadata, sm.MemberAssignment = []byte{}, []byte{}
		if stable {
			if md := m.metadataFor(g.protocol); md != nil {
				sm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				sm.MemberAssignment = m.assignment
			}
		}
		sg.Members = append(sg.Members, sm)
	}
}

// DeleteGroups deletes empty groups and their offsets.
//
// Only Empty groups are deleted (NON_EMPTY_GROUP otherwise); unknown ones
// are GROUP_ID_NOT_FOUND. The group's offsets and metadata get
// tombstones in one batch, answered once committed.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	open := c.enter()
	if open {
		defer c.wg.Done()
	}
	for _, id := range req.Groups {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group = id
		switch {
		case !open:
			sg.ErrorCode = kerr.NotCoordinator.Code
		case c.isLoading(id):
			sg.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		default:
			sg.ErrorCode = c.deleteGroup(ctx, id)
		}
		if req.Version >= 3 && sg.ErrorCode != 0 {
			msg := kerr.ErrorForCode(sg.ErrorCode).(*kerr.Error).Description
			sg.ErrorMessage = &msg
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) int16 {
	g := c.lockLive(id, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	if g.state != stateEmpty {
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	records := make([]record, 0, len(g.offsets)+1)
	for _, tp := range g.sortedOffsets() {
		records = append(records, record{key: offsetCommitKey(g.id, tp.topic, tp.partition)})
	}
	records = append(records, record{key: groupMetadataKey(g.id)})
	p, base, err := g.appendRecords(records)
	if err != nil {
		g.mu.Unlock()
		return c.storageError(err, "delete group").Code
	}
	// Pending members (MEMBER_ID_REQUIRED handed out) rejoin a new group.
	g.kill()
	g.mu.Unlock()
	c.logger.Info("group deleted", zap.String("group", id), zap.Int("offsets", len(records)-1))
	if err := c.waitCommitted(ctx, p, base+int64(len(records))-1); err != nil {
		return c.storageError(err, "delete group").Code
	}
	return 0
}

// sortedOffsets returns the partitions with a committed offset or a
// commit in flight, ordered.
func (g *group) sortedOffsets() []topicPartition {
	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		tps = append(tps, tp)
	}
	for tp := range g.pendingCommits {
		if _, ok := g.offsets[tp]; !ok {
			tps = append(tps, tp)
		}
	}
	sortTopicPartitions(tps)
	return tps
}
