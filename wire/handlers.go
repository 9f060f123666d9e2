package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reply is a handler's answer. Exactly one of resp and finish is set, or
// neither when none is true.
type reply struct {
	// resp is a response ready now.
	resp kmsg.Response
	// finish produces the response later, on the connection's writer
	// goroutine and in request order; it may block (waiting for acks or
	// for fetch data) until ctx ends. Meanwhile the reader goes on reading
	// and handling the next requests.
	finish func(ctx context.Context) kmsg.Response
	// none sends no response (Produce with acks=0).
	none bool
	// closeConn closes the connection after this request's turn: Kafka's
	// way of telling an acks=0 producer that something failed.
	closeConn bool
	// release, if set, is called once the response is written or dropped;
	// it returns the pooled buffers the response's bytes point into.
	release func()
}

// handler answers one decoded request. It runs on the connection's reader
// goroutine, in request order, so work that must be ordered (appends) is
// done here and work that waits is deferred to reply.finish.
type handler func(s *Server, ctx context.Context, req kmsg.Request) reply

// api is one row of the dispatch table.
type api struct {
	key        int16
	minVersion int16
	maxVersion int16
	handle     handler
	// groups marks a group API: served and advertised only when the
	// server has a group coordinator (Options.Groups).
	groups bool
	// transactions marks a transaction API: served and advertised only
	// when the server has a transaction coordinator
	// (Options.Transactions).
	transactions bool
	// shareState marks a share-state API (keys 83-87, between nodes):
	// served and advertised only when the server has a share coordinator
	// (Options.ShareState). Kafka advertises them on its broker
	// listeners, as it does WriteTxnMarkers.
	shareState bool
	// internal marks an API between nodes (AllocateProducerIds): it is
	// advertised only to other nodes' forwarders, as a Kafka broker's
	// client listeners do not advertise controller APIs.
	internal bool
	// shares marks a share-group data API (ShareFetch,
	// ShareAcknowledge): served and advertised only when the server has
	// share groups (Options.Shares).
	shares bool
}

// apis is the dispatch table: the only place that says which APIs and
// versions Sluice serves. ApiVersions is built from it. Each handler lives
// in its own file named NN_snake_name.go after its key. It is filled in
// init because ApiVersions' handler reads it.
var apis []api

// apiByKey indexes apis by key; nil for unserved keys.
var apiByKey [128]*api

func init() {
	apis = []api{
		{key: 0, minVersion: 0, maxVersion: 13, handle: handleProduce},
		{key: 1, minVersion: 0, maxVersion: 18, handle: handleFetch},
		{key: 2, minVersion: 0, maxVersion: 11, handle: handleListOffsets},
		{key: 3, minVersion: 0, maxVersion: 13, handle: handleMetadata},
		{key: 8, minVersion: 0, maxVersion: 9, handle: handleOffsetCommit, groups: true},
		{key: 9, minVersion: 0, maxVersion: 9, handle: handleOffsetFetch, groups: true},
		{key: 10, minVersion: 0, maxVersion: 6, handle: handleFindCoordinator, groups: true},
		{key: 11, minVersion: 0, maxVersion: 9, handle: handleJoinGroup, groups: true},
		{key: 12, minVersion: 0, maxVersion: 4, handle: handleHeartbeat, groups: true},
		{key: 13, minVersion: 0, maxVersion: 5, handle: handleLeaveGroup, groups: true},
		{key: 14, minVersion: 0, maxVersion: 5, handle: handleSyncGroup, groups: true},
		{key: 15, minVersion: 0, maxVersion: 5, handle: handleDescribeGroups, groups: true},
		{key: 16, minVersion: 0, maxVersion: 5, handle: handleListGroups, groups: true},
		{key: 18, minVersion: 0, maxVersion: 4, handle: handleAPIVersions},
		{key: 19, minVersion: 0, maxVersion: 7, handle: handleCreateTopics},
		{key: 20, minVersion: 0, maxVersion: 6, handle: handleDeleteTopics},
		{key: 21, minVersion: 0, maxVersion: 2, handle: handleDeleteRecords},
		{key: 22, minVersion: 0, maxVersion: 5, handle: handleInitProducerID},
		{key: 23, minVersion: 0, maxVersion: 4, handle: handleOffsetForLeaderEpoch},
		{key: 24, minVersion: 0, maxVersion: 5, handle: handleAddPartitionsToTxn, transactions: true},
		{key: 25, minVersion: 0, maxVersion: 4, handle: handleAddOffsetsToTxn, transactions: true},
		{key: 26, minVersion: 0, maxVersion: 5, handle: handleEndTxn, transactions: true},
		{key: 27, minVersion: 0, maxVersion: 1, handle: handleWriteTxnMarkers},
		{key: 28, minVersion: 0, maxVersion: 5, handle: handleTxnOffsetCommit, groups: true},
		{key: 32, minVersion: 0, maxVersion: 4, handle: handleDescribeConfigs},
		{key: 33, minVersion: 0, maxVersion: 2, handle: handleAlterConfigs},
		{key: 35, minVersion: 0, maxVersion: 4, handle: handleDescribeLogDirs},
		{key: 37, minVersion: 0, maxVersion: 3, handle: handleCreatePartitions},
		{key: 42, minVersion: 0, maxVersion: 2, handle: handleDeleteGroups, groups: true},
		{key: 43, minVersion: 0, maxVersion: 2, handle: handleElectLeaders},
		{key: 44, minVersion: 0, maxVersion: 1, handle: handleIncrementalAlterConfigs},
		{key: 45, minVersion: 0, maxVersion: 1, handle: handleAlterPartitionReassignments},
		{key: 46, minVersion: 0, maxVersion: 0, handle: handleListPartitionReassignments},
		{key: 47, minVersion: 0, maxVersion: 0, handle: handleOffsetDelete, groups: true},
		{key: 48, minVersion: 0, maxVersion: 1, handle: handleDescribeClientQuotas},
		{key: 49, minVersion: 0, maxVersion: 1, handle: handleAlterClientQuotas},
		{key: 56, minVersion: 0, maxVersion: 3, handle: handleAlterPartition, internal: true},
		{key: 60, minVersion: 0, maxVersion: 2, handle: handleDescribeCluster},
		{key: 61, minVersion: 0, maxVersion: 0, handle: handleDescribeProducers},
		{key: 62, minVersion: 0, maxVersion: 4, handle: handleBrokerRegistration, internal: true},
		{key: 64, minVersion: 0, maxVersion: 0, handle: handleUnregisterBroker},
		{key: 65, minVersion: 0, maxVersion: 0, handle: handleDescribeTransactions, transactions: true},
		{key: 66, minVersion: 0, maxVersion: 2, handle: handleListTransactions, transactions: true},
		{key: 67, minVersion: 0, maxVersion: 0, handle: handleAllocateProducerIDs, internal: true},
		{key: 76, minVersion: 1, maxVersion: 1, handle: handleShareGroupHeartbeat, groups: true},
		{key: 77, minVersion: 1, maxVersion: 1, handle: handleShareGroupDescribe, groups: true},
		{key: 78, minVersion: 1, maxVersion: 2, handle: handleShareFetch, groups: true, shares: true},
		{key: 79, minVersion: 1, maxVersion: 2, handle: handleShareAcknowledge, groups: true, shares: true},
		{key: 83, minVersion: 0, maxVersion: 0, handle: handleInitializeShareGroupState, shareState: true},
		{key: 84, minVersion: 0, maxVersion: 0, handle: handleReadShareGroupState, shareState: true},
		{key: 85, minVersion: 0, maxVersion: 1, handle: handleWriteShareGroupState, shareState: true},
		{key: 86, minVersion: 0, maxVersion: 0, handle: handleDeleteShareGroupState, shareState: true},
		{key: 87, minVersion: 0, maxVersion: 1, handle: handleReadShareGroupStateSummary, shareState: true},
		{key: 90, minVersion: 0, maxVersion: 1, handle: handleDescribeShareGroupOffsets, groups: true},
		{key: 91, minVersion: 0, maxVersion: 0, handle: handleAlterShareGroupOffsets, groups: true},
		{key: 92, minVersion: 0, maxVersion: 0, handle: handleDeleteShareGroupOffsets, groups: true},
	}
	for i := range apis {
		apis[i].handle = observe(apis[i].key, apis[i].handle)
		apiByKey[apis[i].key] = &apis[i]
	}
}

// lookupAPI returns the table row for key, or nil.
func lookupAPI(key int16) *api {
	if key < 0 || int(key) >= len(apiByKey) {
		return nil
	}
	return apiByKey[key]
}
