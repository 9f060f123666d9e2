package raftgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/transport"
)

// catchUpChunk is how many bytes of batches one ReadLog asks for: a
// restore holds at most one chunk (plus one batch) in memory.
const catchUpChunk = 1 << 20

// LogTransport is the capability of a group's transport that catching up
// from a leader's segments needs (transport.Transport has it): serving
// this replica's committed batches to others, and reading a peer's.
// Without it (raft's in-memory transport) a snapshot install fails.
type LogTransport interface {
	// SetLogReader makes fn answer the peers' ReadLog requests.
	SetLogReader(fn transport.LogReader)
	// SetRestoredHandler makes fn hear of each peer whose install of a
	// snapshot this replica sent ended in success (its catch-up done).
	SetRestoredHandler(fn func(peer raft.ServerAddress))
	// ReadLog asks target for its committed batches from offset from, up
	// to maxBytes.
	ReadLog(target raft.ServerAddress, from int64, maxBytes int) (transport.LogChunk, error)
}

var _ LogTransport = (*transport.Transport)(nil)

// serveLog answers a peer's ReadLog: whole committed batches from offset
// from, read with the replica's normal read path, verbatim (every replica
// stores the same bytes: base offsets and epochs are stamped from the
// Raft log). Any replica may answer: below its high watermark its log is
// the committed log.
func (g *Group) serveLog(asker raft.ServerAddress, from int64, maxBytes int) (transport.LogChunk, error) {
	if hook := g.serveHook.Load(); hook != nil {
		(*hook)(from, maxBytes)
	}
	g.noteReadingLog(asker)
	res, err := g.replica.Read(nil, partition.ReadRequest{Offset: from, MaxBytes: maxBytes, MinOneBatch: true})
	chunk := transport.LogChunk{LogStart: res.LogStartOffset, End: res.HighWatermark, Batches: res.Records}
	switch {
	case errors.Is(err, kerr.OffsetOutOfRange) && from < res.LogStartOffset:
		chunk.Batches = nil // the asker restarts its log at LogStart
		return chunk, nil
	case err != nil:
		return transport.LogChunk{}, fmt.Errorf("raftgroup: read the log from %d for a peer (log [%d, %d) committed): %w", from, res.LogStartOffset, res.HighWatermark, err)
	}
	return chunk, nil
}

// catchUp is the restore of a snapshot a leader installed: the replica
// must hold the committed log up to target (the snapshot's next offset)
// before Raft stores the entries after the snapshot at the log end. The
// data is pulled from the leader's segments, as a Kafka follower fetches:
//
//  1. keep the committed prefix this replica holds (below its high
//     watermark, the same bytes as the leader's) and truncate the rest,
//     which may be uncommitted;
//  2. reset the Raft log store: it holds no entry now, the next one is the
//     snapshot's index + 1 and goes at the log end;
//  3. ReadLog from the log end, chunk by chunk, appending the leader's
//     batches verbatim up to target; if the leader's log starts above the
//     log end (retention), this replica's log restarts there;
//  4. rebuild the producer state and the leader-epoch cache from the log,
//     and move the high watermark to target.
//
// From step 2 on, every batch in the log is committed: a failed attempt
// keeps what it fetched and the next one resumes from there. Raft's
// goroutine that applies entries runs it, so fsm.next is the caller's.
func (g *Group) catchUp(target int64) (err error) {
	snap := g.snaps.pending()
	defer func() {
		if ferr := g.snaps.finish(snap, err == nil); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}()
	if snap.id == "" {
		return errors.New("raftgroup: restore of a snapshot no leader installed")
	}
	<-g.started
	lt := g.logTransport
	if lt == nil {
		return fmt.Errorf("raftgroup: snapshot %s needs the log up to offset %d from the leader, and this group's transport cannot read a peer's log", snap.id, target)
	}
	leader, _ := g.raft.LeaderWithID()
	if leader == "" {
		return fmt.Errorf("raftgroup: snapshot %s installed with no leader known to read the log from", snap.id)
	}
	f := g.fsm
	segs := g.replica.SegmentLog()
	start := segs.NextOffset()
	logger := g.logger.With(zap.String("snapshot", snap.id), zap.String("leader", string(leader)),
		zap.Int64("log-end", start), zap.Int64("committed", f.next), zap.Int64("target", target))
	logger.Info("catching up from the leader's log")

	// The replica's producer state and epoch cache must describe the log,
	// whatever happens below.
	defer func() {
		if rerr := g.replica.Truncated(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("raftgroup: rebuild replica state after catching up: %w", rerr))
		}
	}()
	keep, err := g.matchingPrefix(lt, leader, segs, min(f.next, target), min(segs.NextOffset(), target))
	if err != nil {
		return err
	}
	if segs.NextOffset() > keep {
		if err := segs.TruncateTo(keep); err != nil {
			return fmt.Errorf("raftgroup: truncate to the committed offset %d before catching up: %w", keep, err)
		}
	}
	if err := g.store.Reset(snap.index + 1); err != nil {
		return err
	}
	next := segs.NextOffset()
	for next < target {
		if g.raft.State() == raft.Shutdown {
			return fmt.Errorf("raftgroup: catch up stopped at offset %d of %d: %w", next, target, ErrClosed)
		}
		chunk, err := lt.ReadLog(leader, next, catchUpChunk)
		if err != nil {
			return fmt.Errorf("raftgroup: catch up from offset %d to %d: %w", next, target, err)
		}
		restart := false
		if chunk.LogStart > next {
			// Retention on the leader deleted what this replica lacks:
			// its log restarts at the first batch the leader has, as a
			// Kafka follower's does on OFFSET_OUT_OF_RANGE.
			logStart := chunk.LogStart
			if chunk, err = lt.ReadLog(leader, logStart, catchUpChunk); err != nil {
				return fmt.Errorf("raftgroup: catch up from the leader's log start %d: %w", logStart, err)
			}
			restart = true
		}
		if len(chunk.Batches) == 0 {
			return fmt.Errorf("raftgroup: the leader serves its log only up to %d (start %d), the snapshot needs it up to %d", chunk.End, chunk.LogStart, target)
		}
		n, err := g.appendChunk(segs, chunk.Batches, next, target, restart)
		if err != nil {
			return err
		}
		if err := segs.Sync(); err != nil {
			return fmt.Errorf("raftgroup: sync the log caught up to %d: %w", n, err)
		}
		if n == next && !restart {
			// Its first batch from next ends past target: no batch ends
			// at target (compaction removed the last ones below it), and
			// a log cannot end without one.
			return fmt.Errorf("raftgroup: the leader's log from %d has no batch ending at the snapshot's offset %d (compacted away?)", next, target)
		}
		next = n
		// Committed: a later attempt keeps it.
		f.next = next
	}
	f.next = target
	g.replica.AdvanceHighWatermark(target)
	logger.Info("caught up from the leader's log", zap.Int64("log-end", segs.NextOffset()))
	return nil
}

// matchingPrefix returns the end of the longest prefix of this replica's
// log that the leader holds too, searched in [from, to): below from the
// log is known committed (the high watermark), and a replica restarted
// knows only its replay start as committed, though it may hold more.
//
// A batch of this log equal to the leader's batch at the same offset
// shows the logs equal up to its end: both carry the base offset and the
// term (as leader epoch) of one Raft entry, and Raft's logs that share an
// entry share every entry before it. So the matching batches are a prefix,
// found by bisection with one small ReadLog per step.
func (g *Group) matchingPrefix(lt LogTransport, leader raft.ServerAddress, segs partition.StoreLog, from, to int64) (int64, error) {
	for from < to {
		mid := from + (to-from)/2
		ours, err := segs.Read(nil, log.ReadRequest{Offset: mid, MaxOffset: math.MaxInt64, MaxBytes: 1, MinOneBatch: true})
		if err != nil {
			return 0, fmt.Errorf("raftgroup: read this replica's batch at %d: %w", mid, err)
		}
		h, err := log.ParseBatchHeader(ours)
		if err != nil || h.Size() != len(ours) {
			return 0, fmt.Errorf("raftgroup: batch at %d of this replica: %d bytes (%v)", mid, len(ours), err)
		}
		theirs, err := lt.ReadLog(leader, mid, 1)
		if err != nil {
			return 0, fmt.Errorf("raftgroup: compare the batch at %d with the leader's: %w", mid, err)
		}
		if len(theirs.Batches) >= len(ours) && bytes.Equal(theirs.Batches[:len(ours)], ours) {
			from = h.NextOffset()
		} else {
			to = h.BaseOffset
		}
	}
	return from, nil
}

// appendChunk appends the batches of a ReadLog answer from offset next up
// to target and returns the new log end. With restart, the log first
// restarts empty at the first batch's base offset.
func (g *Group) appendChunk(segs partition.StoreLog, b []byte, next, target int64, restart bool) (int64, error) {
	for len(b) > 0 {
		h, err := log.VerifyBatch(b)
		if err != nil {
			return next, fmt.Errorf("raftgroup: batch from the leader after offset %d: %w", next, err)
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		if restart && h.BaseOffset > next {
			if h.BaseOffset > target {
				// DeleteRecords on the leader passed the snapshot: the
				// entries after it no longer follow a batch this log
				// could hold. A later snapshot will do.
				return next, fmt.Errorf("raftgroup: the leader's log starts at %d, past the snapshot's offset %d", h.BaseOffset, target)
			}
			if err := segs.RestartAt(h.BaseOffset); err != nil {
				return next, fmt.Errorf("raftgroup: restart the log at the leader's first batch %d: %w", h.BaseOffset, err)
			}
			next = h.BaseOffset
		}
		restart = false
		if h.NextOffset() <= next {
			continue
		}
		if h.BaseOffset < next {
			return next, fmt.Errorf("raftgroup: the leader sent a batch at %d inside this log, which ends at %d", h.BaseOffset, next)
		}
		if h.NextOffset() > target {
			break // Raft's entries after the snapshot hold the rest
		}
		write := segs.Append
		if h.BaseOffset > next {
			// The leader's compaction removed the batches between.
			write = segs.AppendCompacted
		}
		if err := write(batch); err != nil {
			return next, fmt.Errorf("raftgroup: append the leader's batch at %d: %w", h.BaseOffset, err)
		}
		next = h.NextOffset()
	}
	return next, nil
}
