package wire

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAllocateProducerIDsOnlyForNodes checks that AllocateProducerIds is
// advertised and answered only for another node's forwarder (and
// AlterPartition advertised only to it), and that a
// forwarder naming a registered node gets disjoint blocks (a single node
// is its own metadata leader).
func TestAllocateProducerIDsOnlyForNodes(t *testing.T) {
	addr, cluster := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name, clientID string
		broker         int32
		advertised     bool
		code           int16
	}{
		{name: "client", clientID: "app", broker: cluster.NodeID(), code: kerr.ClusterAuthorizationFailed.Code},
		{name: "forwarder", clientID: forwardClientPrefix + "7", broker: cluster.NodeID(), advertised: true},
		{name: "forwarder naming a stranger", clientID: forwardClientPrefix + "7", broker: 99, advertised: true, code: kerr.ClusterAuthorizationFailed.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(tc.clientID))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			var advertised bool
			for _, key := range []int16{56, 67} {
				advertised = slices.ContainsFunc(versions.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == key })
				if advertised != tc.advertised {
					t.Fatalf("%s advertised: %v, want %v", kmsg.NameForKey(key), advertised, tc.advertised)
				}
			}
			if !advertised {
				// kgo refuses to send what is not advertised; the
				// answer is checked on the wire by the raw client.
				rc := dial(t, addr)
				req := kmsg.NewPtrAllocateProducerIDsRequest()
				req.BrokerID = tc.broker
				body := frameFor(req, 1, &tc.clientID)
				if _, err := rc.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
					t.Fatal(err)
				}
				resp := rc.receive(req, 1, 0).(*kmsg.AllocateProducerIDsResponse)
				if resp.ErrorCode != tc.code {
					t.Fatalf("error code %d, want %d", resp.ErrorCode, tc.code)
				}
				return
			}
			var last int64 = -1
			for range 2 {
				req := kmsg.NewPtrAllocateProducerIDsRequest()
				req.BrokerID = tc.broker
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					t.Fatal(err)
				}
				if resp.ErrorCode != tc.code {
					t.Fatalf("error code %d, want %d", resp.ErrorCode, tc.code)
				}
				if tc.code != 0 {
					return
				}
				if resp.ProducerIDLen < 1 || resp.ProducerIDStart <= last {
					t.Fatalf("block [%d, +%d) after one ending at %d", resp.ProducerIDStart, resp.ProducerIDLen, last)
				}
				last = resp.ProducerIDStart + int64(resp.ProducerIDLen) - 1
			}
		})
	}
}
