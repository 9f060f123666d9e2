package sharestate

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication"
)

// The operations on one key, in two steps: begin decides the change and
// appends its record under c.mu (so records land in the order the
// changes were made in memory, and a connection's pipelined requests
// apply in request order), and the returned pending waits for the
// commit outside the lock.

// change computes a key's next state from its current one: write says a
// record is needed, remove that it is a tombstone.
type change func(cur State) (next State, write, remove bool, err error)

// pending is an operation begun: its answer once the record it appended,
// or the last one appended earlier for the key, is committed.
type pending struct {
	state  State
	commit *commit
	err    error
}

// wait returns the operation's state once it is durable, or its error:
// a *kerr.Error the caller acts on (see codeOf).
func (p pending) wait(ctx context.Context) (State, error) {
	if p.err != nil {
		return State{}, p.err
	}
	if err := p.commit.wait(ctx); err != nil {
		return State{}, err
	}
	return p.state, nil
}

// checkKey reports a key no share-partition can have.
func checkKey(k Key) error {
	switch {
	case k.Group == "":
		return &failure{kerr.InvalidRequest, "empty group id"}
	case len(k.Group) > maxGroupLen:
		return &failure{kerr.InvalidRequest, "group id longer than 32767 bytes"}
	case k.Partition < 0:
		return &failure{kerr.InvalidRequest, "negative partition"}
	case k.TopicID == [16]byte{}:
		return &failure{kerr.InvalidRequest, "zero topic id"}
	}
	return nil
}

// begin applies ch to key k's state and appends the record it asks for.
func (c *Coordinator) begin(k Key, ch change) pending {
	if err := checkKey(k); err != nil {
		return pending{err: err}
	}
	p := c.partitionFor(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.coordinatorLocked(p); code != nil {
		return pending{err: &failure{code, "share-partition " + CoordinatorKey(k)}}
	}
	o := &c.owned[p]
	e := o.keys[k]
	cur := uninitialized
	var last *commit
	if e != nil {
		cur, last = e.state, e.commit
	}
	next, write, remove, err := ch(cur)
	if err != nil {
		return pending{err: err}
	}
	if !write {
		return pending{state: cur.clone(), commit: last}
	}
	var rec []byte
	if remove {
		next = uninitialized
		rec = encodeRecord(k, nil, c.now())
	} else {
		rec = encodeRecord(k, &next, c.now())
	}
	res, err := c.handle(p).Append(context.Background(), rec)
	if err != nil {
		// Nothing was proposed: memory still matches the log.
		return pending{err: storeError(err)}
	}
	if e == nil {
		e = &entry{}
		if o.keys == nil {
			o.keys = make(map[Key]*entry)
		}
		o.keys[k] = e
	}
	m := &commit{done: make(chan struct{})}
	e.state, e.commit = next, m
	epoch, _ := o.Loaded()
	c.wg.Add(1)
	go c.awaitCommit(p, epoch, k, e, m, res)
	return pending{state: next.clone(), commit: m}
}

// awaitCommit waits for the commit of the record appended for entry e of
// key k in partition p's leader epoch epoch, and publishes its outcome in
// m. A record not confirmed may still land: the partition is then dropped
// and reloaded from the log on the next request, so memory never
// disagrees with the log.
func (c *Coordinator) awaitCommit(p, epoch int32, k Key, e *entry, m *commit, res replication.Appended) {
	defer c.wg.Done()
	err := res.Wait(c.ctx)
	c.mu.Lock()
	if err != nil {
		m.err = storeError(err)
		if now, ok := c.ownedEpochLocked(p); ok && now == epoch {
			c.unloadLocked(p, "a state record was not confirmed")
		}
	} else if e.commit == m {
		e.commit = nil
		if !e.state.initialized() && c.owned[p].keys[k] == e {
			delete(c.owned[p].keys, k)
		}
	}
	c.mu.Unlock()
	close(m.done)
}

// initialize begins Initialize of k (initializeState).
func (c *Coordinator) initialize(k Key, stateEpoch int32, startOffset int64) pending {
	return c.begin(k, func(cur State) (State, bool, bool, error) {
		next, err := initializeState(cur, stateEpoch, startOffset)
		// A retry of the initialization that made cur changes nothing.
		return next, err == nil && next.StateEpoch != cur.StateEpoch, false, err
	})
}

// read begins Read of k by the leader in leaderEpoch (readState).
func (c *Coordinator) read(k Key, leaderEpoch int32) pending {
	return c.begin(k, func(cur State) (State, bool, bool, error) {
		next, changed, err := readState(cur, leaderEpoch)
		return next, changed, false, err
	})
}

// write begins Write w of k (writeState).
func (c *Coordinator) write(k Key, w Write) pending {
	return c.begin(k, func(cur State) (State, bool, bool, error) {
		next, err := writeState(cur, w)
		return next, err == nil, false, err
	})
}

// summary begins ReadSummary of k: no fencing, no record.
func (c *Coordinator) summary(k Key) pending {
	return c.begin(k, func(cur State) (State, bool, bool, error) { return cur, false, false, nil })
}

// remove begins Delete of k: a tombstone, unless k has no state.
func (c *Coordinator) remove(k Key) pending {
	return c.begin(k, func(cur State) (State, bool, bool, error) {
		return uninitialized, cur.initialized(), true, nil
	})
}
