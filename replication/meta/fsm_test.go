package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

// apply feeds cmd to f as the entry at index and returns the result.
func apply(t *testing.T, f *FSM, index uint64, cmd Command) *Result {
	t.Helper()
	b, err := Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}).(*Result)
	if !ok {
		t.Fatalf("Apply returned %T", res)
	}
	return res
}

// randomCommands returns a deterministic mix of valid and invalid commands
// over a small universe of names and nodes, so many collide.
func randomCommands(seed uint64, n int) []Command {
	rng := rand.New(rand.NewPCG(seed, seed))
	cmds := []Command{initCluster(1, 2, 3)}
	topic := func() string { return fmt.Sprintf("t%d", rng.IntN(6)) }
	replicas := func() []int32 {
		rs := make([]int32, 1+rng.IntN(3))
		for i := range rs {
			rs[i] = int32(1 + rng.IntN(5))
		}
		return rs
	}
	for len(cmds) < n {
		var c Command
		switch rng.IntN(9) {
		case 0:
			id := int32(1 + rng.IntN(5))
			c = &RegisterNode{Node: node(id)}
		case 1:
			c = &MarkNodeLeaving{NodeID: int32(1 + rng.IntN(5))}
		case 2:
			c = &RemoveNode{NodeID: int32(1 + rng.IntN(5))}
		case 3:
			as := make([][]int32, 1+rng.IntN(3))
			for i := range as {
				as[i] = replicas()
			}
			c = &CreateTopic{Name: topic(), ID: TopicID{byte(rng.IntN(8) + 1)}, Assignment: as}
		case 4:
			c = &DeleteTopic{Name: topic()}
		case 5:
			c = &CreatePartitions{Topic: topic(), Count: int32(2 + rng.IntN(3)), Assignment: [][]int32{replicas()}}
		case 6:
			c = &AlterTopicConfigs{Topic: topic(), Configs: map[string]string{"retention.ms": fmt.Sprint(rng.IntN(100))}}
		case 7:
			c = &AlterBrokerConfigs{NodeID: int32(rng.IntN(4)) - 1, Configs: map[string]string{"k": fmt.Sprint(rng.IntN(3))}}
		case 8:
			switch rng.IntN(6) {
			case 0:
				c = &AllocateProducerIDBlock{NodeID: 1, Size: int64(rng.IntN(2000))}
			case 5:
				c = NewRecordLeaders([]LeaderChange{{TopicID: TopicID{byte(rng.IntN(8) + 1)}, Partition: int32(rng.IntN(3)),
					Leader: int32(1 + rng.IntN(5)), Epoch: int32(rng.IntN(4))}})
			case 1:
				c = &ReassignPartition{Topic: topic(), Partition: int32(rng.IntN(3)), Replicas: replicas()}
			case 2:
				c = &AlterReassignment{Topic: topic(), Partition: int32(rng.IntN(3)), Target: replicas()}
			case 3:
				c = &AlterReassignment{Topic: topic(), Partition: int32(rng.IntN(3))}
			case 4:
				c = &CompleteReassignment{Topic: topic(), Partition: int32(rng.IntN(3)), Target: replicas()}
			}
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// TestFSMDeterministic applies the same commands to two FSMs and checks
// that they agree on every result and end with identical snapshots.
func TestFSMDeterministic(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			a, b := NewFSM(), NewFSM()
			ok := 0
			for i, cmd := range randomCommands(seed, 400) {
				ra, rb := apply(t, a, uint64(i+1), cmd), apply(t, b, uint64(i+1), cmd)
				if fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) || ra.ProducerIDs != rb.ProducerIDs {
					t.Fatalf("command %d %s: results differ: %v / %v", i, cmd.op(), ra.Err, rb.Err)
				}
				if ra.Err == nil {
					ok++
				}
				checkInvariants(t, a.State())
			}
			if !bytes.Equal(mustSnapshot(t, a.State()), mustSnapshot(t, b.State())) {
				t.Fatal("snapshots differ")
			}
			if ok < 40 {
				t.Fatalf("only %d of 400 commands applied; the generator tests little", ok)
			}
		})
	}
}

func TestFSMMalformedEntry(t *testing.T) {
	f := NewFSM()
	apply(t, f, 1, initCluster(1))
	before := mustSnapshot(t, f.State())
	res, _ := f.Apply(&raft.Log{Index: 2, Data: []byte("garbage")}).(*Result)
	if !errors.Is(res.Err, ErrMalformedCommand) || !errors.Is(res.Err, kerr.InvalidRequest) {
		t.Fatalf("garbage entry: %v", res.Err)
	}
	if f.State().Version != 2 || !bytes.Equal(mustSnapshot(t, withVersion(f.State(), 1)), before) {
		t.Fatal("garbage entry changed the state beyond its version")
	}
}

// TestFSMSnapshotRestore persists snapshots through Raft's snapshot store
// at several points and restores each into a fresh FSM.
func TestFSMSnapshotRestore(t *testing.T) {
	cmds := randomCommands(42, 300)
	for _, at := range []int{1, 10, 150, 300} {
		t.Run(fmt.Sprint("after", at), func(t *testing.T) {
			f := NewFSM()
			for i, cmd := range cmds[:at] {
				apply(t, f, uint64(i+1), cmd)
			}
			snap, err := f.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			// Applying after Snapshot must not change what it persists.
			want := mustSnapshot(t, f.State())
			apply(t, f, uint64(at+1), &AllocateProducerIDBlock{NodeID: 1, Size: 7})
			store := raft.NewInmemSnapshotStore()
			sink, err := store.Create(raft.SnapshotVersionMax, uint64(at), 1, raft.Configuration{}, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := snap.Persist(sink); err != nil {
				t.Fatal(err)
			}
			snap.Release()
			_, rc, err := store.Open(sink.ID())
			if err != nil {
				t.Fatal(err)
			}
			g := NewFSM()
			changed := g.Changed()
			if err := g.Restore(rc); err != nil {
				t.Fatal(err)
			}
			select {
			case <-changed:
			default:
				t.Fatal("Restore did not signal Changed")
			}
			if got := mustSnapshot(t, g.State()); !bytes.Equal(got, want) {
				t.Fatalf("restored state differs:\n%s\n%s", got, want)
			}
			// The restored FSM goes on applying (its index is intact), on
			// a node the random commands left registered.
			ids := g.State().NodeIDs(false)
			if len(ids) == 0 {
				t.Fatal("no registered node left; the generator tests little")
			}
			if res := apply(t, g, uint64(at+1), &CreateTopic{Name: "after-restore", ID: TopicID{0xee}, Assignment: [][]int32{{ids[0]}}}); res.Err != nil {
				t.Fatal(res.Err)
			}
		})
	}
}

func TestRestoreRefusesCorrupt(t *testing.T) {
	good := mustSnapshot(t, fuzzBaseState(t))
	for _, tc := range []struct{ name, in string }{
		{"garbage", "{"},
		{"format", `{"format":2,"state":{}}`},
		{"no state", `{"format":1}`},
		{"misfiled topic", `{"format":1,"state":{"topics":{"a":{"name":"b","id":"00000000000000000000000000000001","configs":{},"partitions":[{"replicas":[1]}]}}}}`},
		{"no replicas", `{"format":1,"state":{"topics":{"a":{"name":"a","id":"00000000000000000000000000000001","configs":{},"partitions":[{"replicas":[]}]}}}}`},
		{"truncated", string(good[:len(good)/2])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			err := f.Restore(io.NopCloser(bytes.NewReader([]byte(tc.in))))
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("Restore: %v, want ErrCorruptSnapshot", err)
			}
			if f.State().Version != 0 {
				t.Fatal("a refused snapshot replaced the state")
			}
		})
	}
}

// FuzzDecodeSnapshot checks that DecodeSnapshot never panics, that what
// it accepts satisfies the state invariants, and that it re-encodes to a
// snapshot that decodes to the same state.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(mustSnapshot(f, Empty()))
	f.Add(mustSnapshot(f, fuzzBaseState(f)))
	f.Add([]byte(`{"format":1,"state":{"topics":{"a":{"name":"a","id":"00000000000000000000000000000001","partitions":[{"replicas":[1]}]}},"nodes":{"1":{"id":1}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("error %v does not wrap ErrCorruptSnapshot", err)
			}
			return
		}
		checkInvariants(t, s)
		b2 := mustSnapshot(t, s)
		s2, err := DecodeSnapshot(b2)
		if err != nil {
			t.Fatalf("re-encoded snapshot refused: %v\n%s", err, b2)
		}
		if !bytes.Equal(mustSnapshot(t, s2), b2) {
			t.Fatal("snapshot encoding not canonical")
		}
	})
}
