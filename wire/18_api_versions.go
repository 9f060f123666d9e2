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
// above ours is answered, per KIP-511, with a v0 response carrying
// UNSUPPORTED_VERSION and our versions, so any client can negotiate down;
// conn.handle does that before decoding.
//
// Version notes: v1 adds throttle time; v3 (KIP-511) is flexible and
// carries the client's software name and version; v3+ responses may carry
// feature flags (KIP-584), of which Sluice has none. Version 5 (KIP-1242,
// cluster and node id checks) is not served yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

func handleAPIVersions(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	resp := kreq.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = advertisedAPIs(s.groups != nil, s.txns != nil, s.shareState != nil, isForwarded(ctx), s.shares != nil)
	return reply{resp: resp}
}

// unsupportedAPIVersions is the v0 answer to an ApiVersions request of a
// version we do not serve.
func unsupportedAPIVersions(groups, transactions, shareState, internal, shares bool) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = advertisedAPIs(groups, transactions, shareState, internal, shares)
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
