package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

// snapshotFormat is the version of the snapshot encoding.
const snapshotFormat = 1

// maxSnapshotSize bounds a snapshot Restore reads.
const maxSnapshotSize = 1 << 30

var (
	// ErrCorruptSnapshot reports a snapshot Restore cannot decode.
	ErrCorruptSnapshot = errors.New("meta: corrupt snapshot")
)

// FSM is the metadata state machine: raft.FSM over State. Raft calls Apply,
// Snapshot and Restore from its FSM goroutine, one at a time; readers call
// State and Changed from any goroutine, without locks.
type FSM struct {
	// state is the current State, replaced (never modified) by Apply and
	// Restore.
	state atomic.Pointer[State]

	// mu guards changed.
	mu sync.Mutex
	// changed is closed, and replaced, each time state is.
	changed chan struct{}
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.FSMSnapshot = (*fsmSnapshot)(nil)
)

// NewFSM returns an FSM holding the empty state.
func NewFSM() *FSM {
	f := &FSM{changed: make(chan struct{})}
	f.state.Store(Empty())
	return f
}

// State returns the current state. Safe for concurrent use; the State is
// immutable.
func (f *FSM) State() *State { return f.state.Load() }

// Changed returns a channel closed at the next state change after the
// call. Load State after it closes, and call Changed again before the
// next wait. Changes are not queued: a slow reader sees the latest state,
// never each one, and Apply never waits for a reader.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// publish makes s the current state and wakes Changed waiters.
func (f *FSM) publish(s *State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.Store(s)
	close(f.changed)
	f.changed = make(chan struct{})
}

// Apply decodes and applies one committed command and returns its *Result
// (a value Raft hands back to the proposer through ApplyFuture.Response).
// An entry that does not decode is refused like any invalid command: the
// state is unchanged on every node, so they stay identical.
func (f *FSM) Apply(l *raft.Log) any {
	cmd, err := Decode(l.Data)
	s := f.state.Load()
	var next *State
	var res Result
	if err != nil {
		next, res = s.clone(), Result{Version: l.Index, Err: fmt.Errorf("%w: %w", err, kerr.InvalidRequest)}
		next.Version = l.Index
	} else {
		next, res = s.Apply(l.Index, cmd)
	}
	f.publish(next)
	return &res
}

// Snapshot captures the current state; it is immutable, so Persist may
// encode it concurrently with later Applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state.Load()}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxSnapshotSize+1))
	if err != nil {
		return fmt.Errorf("meta: read snapshot: %w", err)
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	f.publish(s)
	return nil
}

// snapshotFile is the snapshot encoding (see doc.go, Formats).
type snapshotFile struct {
	Format int    `json:"format"`
	State  *State `json:"state"`
}

// EncodeSnapshot returns the snapshot encoding of s. The same state gives
// the same bytes (encoding/json sorts map keys).
func EncodeSnapshot(s *State) ([]byte, error) {
	b, err := json.Marshal(snapshotFile{Format: snapshotFormat, State: s})
	if err != nil {
		return nil, fmt.Errorf("meta: encode snapshot: %w", err)
	}
	return b, nil
}

// DecodeSnapshot parses a snapshot. Errors wrap ErrCorruptSnapshot.
func DecodeSnapshot(b []byte) (*State, error) {
	if len(b) > maxSnapshotSize {
		return nil, fmt.Errorf("snapshot is larger than %d bytes: %w", maxSnapshotSize, ErrCorruptSnapshot)
	}
	var sf snapshotFile
	if err := strictUnmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("decode snapshot: %v: %w", err, ErrCorruptSnapshot)
	}
	if sf.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %d, this node reads %d: %w", sf.Format, snapshotFormat, ErrCorruptSnapshot)
	}
	if sf.State == nil {
		return nil, fmt.Errorf("snapshot without a state: %w", ErrCorruptSnapshot)
	}
	if err := sf.State.validate(); err != nil {
		return nil, fmt.Errorf("snapshot at version %d: %w: %w", sf.State.Version, err, ErrCorruptSnapshot)
	}
	return sf.State, nil
}

// fsmSnapshot is one State being written to a snapshot sink.
type fsmSnapshot struct {
	state *State
}

// Persist writes the snapshot and closes the sink, or cancels it.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := EncodeSnapshot(s.state)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("meta: persist snapshot at version %d: %w", s.state.Version, err)
	}
	return sink.Close()
}

// Release does nothing: the state is garbage collected.
func (s *fsmSnapshot) Release() {}
