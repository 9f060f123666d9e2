package consumergroup

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups lists groups, filtered by state (v4+, case-insensitive) and
// type (v5+: "classic", or "share" for share groups, whose protocol type
// is "share" too and whose state is Empty or Stable).
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	// Each broker lists the groups it coordinates: those of the
	// partitions it leads, loaded (or loading: then the client retries).
	for p := int32(0); p < c.partitions; p++ {
		if c.coordinatorLocked(p) == kerr.CoordinatorLoadInProgress.Code {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
	}
	if resp.ErrorCode != 0 {
		return resp
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range c.sortedGroupsLocked() {
		if !matches(req.StatesFilter, g.state.String()) || !matches(req.TypesFilter, "classic") {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, g.protocolType, g.state.String(), "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	for _, g := range c.sortedShareGroupsLocked() {
		if !matches(req.StatesFilter, g.state()) || !matches(req.TypesFilter, ShareGroupProtocolType) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, ShareGroupProtocolType, g.state(), ShareGroupProtocolType
		resp.Groups = append(resp.Groups, lg)
	}
	sort.SliceStable(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

func (c *Coordinator) sortedGroupsLocked() []*group {
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// DescribeGroups describes groups: state, protocol, members and their
// assignments. An unknown group is described as Dead with no members, as
// Kafka does; so is a share group (Kafka answers GROUP_ID_NOT_FOUND for a
// group that is not classic, which versions before 6 show as Dead):
// ShareGroupDescribe describes those.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		code := int16(0)
		if id != "" {
			code = c.checkGroupLocked(id)
		}
		g := c.groups[id]
		switch {
		case id == "":
			dg.ErrorCode = kerr.InvalidGroupID.Code
		case code != 0:
			dg.ErrorCode = code
		case g == nil:
			dg.State = stateDead.String()
		default:
			dg.State, dg.ProtocolType = g.state.String(), g.protocolType
			if g.state == stateStable {
				// As Kafka's GroupSummary: the protocol only once stable.
				dg.Protocol = g.protocol
			}
			members := make([]*member, 0, len(g.members))
			for _, m := range g.members {
				members = append(members, m)
			}
			sort.Slice(members, func(i, j int) bool { return members[i].joinSeq < members[j].joinSeq })
			for _, m := range members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.host
				if g.state == stateStable {
					dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
				}
				dg.Members = append(dg.Members, dm)
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// allGroupOperations is the KIP-430 bit field of READ, DELETE, DESCRIBE:
// Sluice has no ACLs, so everything is allowed.
const allGroupOperations int32 = 1<<3 | 1<<6 | 1<<8

// DeleteGroups deletes empty groups and their offsets: tombstones for every
// committed offset and for the group's metadata, durable before answering.
// An empty share group's share-partition states are deleted (through the
// share persister) before its own tombstone is written.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		dg.ErrorCode = c.deleteGroup(ctx, id)
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) int16 {
	if code := c.lockGroupRequest(id); code != 0 {
		return code
	}
	if sg := c.shareGroups[id]; sg != nil {
		c.mu.Unlock()
		return c.deleteShareGroup(ctx, id)
	}
	g := c.groups[id]
	switch {
	case g == nil || g.state == stateDead:
		c.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	case g.state != stateEmpty:
		c.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	records := c.tombstonesLocked(g)
	w, err := c.appendLocked(c.partitionFor(id), encodeBatch(records))
	if err != nil {
		c.mu.Unlock()
		return storeErrorCode(err)
	}
	g.state = stateDead
	delete(c.groups, id)
	c.stopTimersLocked(g)
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	if err := w.wait(ctx); err != nil {
		return storeErrorCode(err)
	}
	c.logger.Info("group deleted", zapGroup(id))
	return 0
}

// tombstonesLocked returns the records that delete a group and its offsets.
func (c *Coordinator) tombstonesLocked(g *group) []kv {
	records := []kv{{key: groupKey(g.id)}}
	for tp := range g.offsets {
		records = append(records, kv{key: offsetKey(g.id, tp)})
	}
	// Commits still being written precede these tombstones in the log, as
	// do offsets pending in open transactions: a reload drops those at
	// the tombstone, as DeleteGroups drops them from memory.
	seen := make(map[topicPartition]bool)
	more := func(tp topicPartition) {
		if _, ok := g.offsets[tp]; !ok && !seen[tp] {
			seen[tp] = true
			records = append(records, kv{key: offsetKey(g.id, tp)})
		}
	}
	for tp := range g.pendingCommits {
		more(tp)
	}
	for _, pending := range g.txnOffsets {
		for tp := range pending {
			more(tp)
		}
	}
	return records
}
