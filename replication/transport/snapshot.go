package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// installSnapshot sends one InstallSnapshot on a connection of its own:
// the request frame, then exactly args.Size bytes copied from data as they
// are read (the snapshot is never held whole), then it reads the response
// and closes the connection; each ReadLog of the target's restore extends
// the wait for the answer (restore_wait.go). At most MaxSnapshotStreams
// run per peer, each until it is answered.
func (t *Transport) installSnapshot(target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	p, err := t.m.peer(target)
	if err != nil {
		return err
	}
	timer := time.NewTimer(t.m.cfg.Timeout)
	select {
	case p.snapshots <- struct{}{}:
		timer.Stop()
	case <-timer.C:
		return fmt.Errorf("%w: waiting for one of %d snapshot streams to %s", ErrTimeout, cap(p.snapshots), target)
	case <-t.ctx.Done():
		timer.Stop()
		return ErrClosed
	}
	defer func() { <-p.snapshots }()

	conn, err := t.m.dialPeer(target)
	if err != nil {
		return err
	}
	defer t.m.untrack(conn)
	// Closing the group or the Mux aborts the stream.
	stop := context.AfterFunc(t.ctx, func() { conn.Close() })
	defer stop()
	until := deadline(snapshotTimeout(t.m.cfg, args.Size))
	conn.SetDeadline(until)
	defer t.trackSnapshotOut(target, conn, until)()

	var e encoder
	e.begin(typeInstallSnapshot, 1)
	e.str(t.group)
	if err := encodeRequest(&e, args); err != nil {
		return err
	}
	bufs, _, err := e.finish(t.m.cfg.MaxFrameSize)
	if err != nil {
		return err
	}
	if _, err := bufs.WriteTo(conn); err != nil {
		return fmt.Errorf("transport: send install snapshot of group %q to %s: %w", t.group, target, err)
	}
	if n, err := io.CopyN(conn, data, args.Size); err != nil {
		return fmt.Errorf("transport: stream snapshot of group %q to %s (%d of %d bytes): %w", t.group, target, n, args.Size, err)
	}
	b, err := readFrame(bufio.NewReader(conn), t.m.cfg.MaxFrameSize)
	if err != nil {
		return fmt.Errorf("transport: read install snapshot response of group %q from %s: %w", t.group, target, err)
	}
	f, err := parseFrame(b)
	if err != nil {
		return err
	}
	if f.typ != typeInstallSnapshot|responseBit || f.id != 1 {
		return fmt.Errorf("%w: response type %#x id %d to install snapshot", ErrMalformed, f.typ, f.id)
	}
	remoteErr, err := decodeResponseFrame(f, resp)
	if err != nil {
		return err
	}
	if remoteErr != "" {
		return fmt.Errorf("transport: install snapshot of group %q on %s: %s", t.group, target, remoteErr)
	}
	if fn := t.restoredHandler(); fn != nil && resp.Success {
		fn(target)
	}
	return nil
}
