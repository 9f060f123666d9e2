package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// ShareGroupCoordinator is what the wire layer needs of the group
// coordinator for share groups (KIP-932): membership and the admin APIs of
// share-partition offsets. Each method takes a decoded request whose
// version is set and returns the response of the same version, never nil.
// The group coordinator (Options.Groups) serves them when it implements
// this interface, as *consumergroup.Coordinator does; otherwise they
// answer UNSUPPORTED_VERSION per group.
type ShareGroupCoordinator interface {
	ShareGroupHeartbeat(ctx context.Context, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse
	ShareGroupDescribe(ctx context.Context, req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse
	// DescribeShareGroupOffsets, AlterShareGroupOffsets and
	// DeleteShareGroupOffsets read and reset share-partition states
	// through the share state store; they may block until ctx ends.
	DescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse
	AlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse
	DeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse
}

var _ ShareGroupCoordinator = (*consumergroup.Coordinator)(nil)

// shareGroups returns the server's share group coordinator, nil when its
// group coordinator has none.
func (s *Server) shareGroups() ShareGroupCoordinator {
	sg, _ := s.groups.(ShareGroupCoordinator)
	return sg
}
