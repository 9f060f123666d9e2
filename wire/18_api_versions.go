package wire

// ApiVersions (key 18), versions 0-4.
//
// Answers the versions of every API in the dispatch table (handlers.go), so
// what is advertised is exactly what is served; the group APIs only when
// the server has a group coordinator, the transaction APIs only when it
// has a transaction coordinator, the share-state APIs between nodes
// (83-87) only when it has a share coordinator, as a Kafka broker
// advertises them on its broker listeners; the internal APIs between nodes
// (AllocateProducerIds) only to other nodes' forwarders (their client id
// starts "sluice-forward-"), as a Kafka broker's client listeners do not
// advertise controller APIs. A request of a version
// above ours is answered, per KIP-511 and as Kafka answers it, with a v0
// response carrying UNSUPPORTED_VERSION and only ApiVersions' own
// versions, so the client retries at our highest version and learns the
// rest, features included (kgo takes a full key table in that answer as
// final, and v0 has no features); conn.handle does that before decoding.
//
// Version notes: v1 adds throttle time; v3 (KIP-511) is flexible and
// carries the client's software name and version; v3+ responses carry
// feature flags (KIP-584): with a transaction coordinator, the feature
// transaction.version supported at levels 0-2 and finalized at level 2
// (KIP-890 part 2), so Kafka 4 clients use the transaction protocol of
// version 2 (Produce v12 adds partitions, TxnOffsetCommit v5 adds the
// group, EndTxn v5 bumps the epoch) and older clients, which do not read
// the feature, keep version 1. Sluice finalizes no other feature (no
// metadata.version, group.version, ...). Version 5 (KIP-1242, cluster and
// node id checks) is not served yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func handleAPIVersions(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = advertisedAPIs(s.groups != nil, s.txns != nil, s.shareState != nil, isForwarded(ctx), s.shares != nil)
	if resp.Version >= 3 && s.txns != nil {
		setFeatures(resp)
	}
	return reply{resp: resp}
}

// transactionVersionFeature is the feature (KIP-584) naming the
// transaction protocol version: 2 is KIP-890 part 2.
const transactionVersionFeature = "transaction.version"

// transactionVersion is the level of transactionVersionFeature Sluice
// finalizes: every node serves version 2, so there is no upgrade to
// coordinate.
const transactionVersion = 2

// featuresEpoch is the FinalizedFeaturesEpoch advertised: the finalized
// features never change in a running cluster (a client reads -1 as "no
// finalized features").
const featuresEpoch = 1

// setFeatures sets the supported and finalized features of an
// ApiVersions v3+ response.
func setFeatures(resp *kmsg.ApiVersionsResponse) {
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name, sf.MinVersion, sf.MaxVersion = transactionVersionFeature, 0, transactionVersion
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
	ff := kmsg.NewApiVersionsResponseFinalizedFeature()
	ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionFeature, transactionVersion, transactionVersion
	resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	resp.FinalizedFeaturesEpoch = featuresEpoch
}

// unsupportedAPIVersions is the v0 answer to an ApiVersions request of a
// version we do not serve: UNSUPPORTED_VERSION with ApiVersions' own
// versions only, the version to retry with (KIP-511).
func unsupportedAPIVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a := lookupAPI(apiVersionsKey)
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

// advertisedAPIs returns the dispatch table as ApiVersions keys, with the
// group APIs only when groups is set, the transaction APIs only when
// transactions is, the share-state APIs only when shareState is, the
// internal ones only when internal is (a request from another node's
// forwarder), and the share-group data APIs only when shares is.
func advertisedAPIs(groups, transactions, shareState, internal, shares bool) []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		if a.groups && !groups || a.transactions && !transactions || a.shareState && !shareState || a.internal && !internal || a.shares && !shares {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.minVersion, a.maxVersion
		keys = append(keys, k)
	}
	return keys
}
