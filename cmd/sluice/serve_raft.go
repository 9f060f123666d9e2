package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/transport"
)

// metaGroup is the transport group id of the metadata Raft group on the
// node's Mux.
const metaGroup = "meta"

// raftNet is the node's Raft networking: one listener and one Mux that
// every Raft group on the node shares: the metadata group and every
// partition's.
type raftNet struct {
	mux      *transport.Mux
	listener net.Listener
	served   chan error
}

// startRaft binds raft.listen and starts the Mux on it; with no
// raft.listen it returns nil (a single node on an in-process transport).
// When raft.advertised.address is not set, the Raft address follows the
// bound listener (so port 0 works), as the Kafka listener's does.
func startRaft(cfg *config, logger *zap.Logger) (*raftNet, error) {
	if cfg.RaftListen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.RaftListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (config raft.listen): %w", cfg.RaftListen, err)
	}
	if !cfg.RaftAdvertisedExplicit {
		bound := defaultAdvertisedAddress(l.Addr().String())
		for i, m := range cfg.Replication.InitialMembers {
			if m.ID == cfg.Replication.NodeID && m.RaftAddress == cfg.Replication.RaftAddress {
				cfg.Replication.InitialMembers[i].RaftAddress = bound
			}
		}
		cfg.Replication.RaftAddress = bound
	}
	tc := transport.DefaultConfig()
	tc.Advertise = raft.ServerAddress(cfg.Replication.RaftAddress)
	tc.PeerFailureTimeout = cfg.RaftPeerFailureTimeout
	opts := transport.Options{Logger: logger}
	if len(cfg.RaftDial) > 0 {
		dial := cfg.RaftDial
		opts.DialAddress = func(a raft.ServerAddress) string {
			if to, ok := dial[string(a)]; ok {
				return to
			}
			return string(a)
		}
	}
	mux, err := transport.New(tc, opts)
	if err != nil {
		l.Close()
		return nil, err
	}
	rn := &raftNet{mux: mux, listener: l, served: make(chan error, 1)}
	go func() { rn.served <- mux.Serve(l) }()
	return rn, nil
}

// metaTransport returns the metadata group's transport, nil for a single
// node without a Raft listener (replication then uses an in-process one).
func (rn *raftNet) metaTransport() (raft.Transport, error) {
	if rn == nil {
		return nil, nil
	}
	t, err := rn.mux.Transport(metaGroup)
	if err != nil {
		return nil, fmt.Errorf("raft transport for group %s: %w", metaGroup, err)
	}
	return t, nil
}

// groupTransport returns the factory of partition groups' transports on
// the Mux, nil for a single node without a Raft listener (each group then
// gets an in-process one).
func (rn *raftNet) groupTransport() func(group string) (raft.Transport, error) {
	if rn == nil {
		return nil
	}
	return func(group string) (raft.Transport, error) {
		t, err := rn.mux.Transport(group)
		if err != nil {
			return nil, fmt.Errorf("raft transport for group %s: %w", group, err)
		}
		return t, nil
	}
}

// close stops the Mux (its listener and peer connections) and waits for
// its Serve to return. Call it after every Raft group on it is closed.
func (rn *raftNet) close() error {
	if rn == nil {
		return nil
	}
	err := rn.mux.Close()
	if serr := <-rn.served; serr != nil && !errors.Is(serr, transport.ErrClosed) && err == nil {
		err = serr
	}
	return err
}
