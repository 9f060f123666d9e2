package wire

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func target(topic string, partition int32, offset int64) fetchTarget {
	return fetchTarget{key: sessionKey{topic: topic, partition: partition}, fetchOffset: offset, maxBytes: 1 << 20, currentLeaderEpoch: -1}
}

func offsetsOf(ts []fetchTarget) map[sessionKey]int64 {
	m := map[sessionKey]int64{}
	for _, t := range ts {
		m[t.key] = t.fetchOffset
	}
	return m
}

func TestFetchSessionLifecycle(t *testing.T) {
	fs := newFetchSessions(10)

	// Open a session with two partitions.
	res := fs.resolve(sessionRequest{id: 0, epoch: 0, full: []fetchTarget{target("a", 0, 5), target("a", 1, 7)}})
	if res.err != nil || res.responseID == 0 || res.incremental || len(res.targets) != 2 {
		t.Fatalf("open: %+v", res)
	}
	id := res.responseID

	// Incremental epoch 1: update a-0's offset, add b-0; a-1 is remembered.
	res = fs.resolve(sessionRequest{id: id, epoch: 1, full: []fetchTarget{target("a", 0, 9), target("b", 0, 0)}})
	if res.err != nil || !res.incremental || res.responseID != id {
		t.Fatalf("incremental: %+v", res)
	}
	got := offsetsOf(res.targets)
	want := map[sessionKey]int64{{topic: "a", partition: 0}: 9, {topic: "a", partition: 1}: 7, {topic: "b", partition: 0}: 0}
	if len(got) != len(want) {
		t.Fatalf("targets %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("targets %v, want %v", got, want)
		}
	}
	if res.targets[0].key.topic != "a" || res.targets[2].key.topic != "b" {
		t.Fatalf("targets not in insertion order: %+v", res.targets)
	}

	// Epoch 2 forgets a-1.
	res = fs.resolve(sessionRequest{id: id, epoch: 2, forgotten: []sessionKey{{topic: "a", partition: 1}}})
	if res.err != nil || len(res.targets) != 2 {
		t.Fatalf("forget: %+v", res)
	}

	// Replaying epoch 2 is refused; so is an unknown session.
	if res = fs.resolve(sessionRequest{id: id, epoch: 2}); res.err != kerr.InvalidFetchSessionEpoch {
		t.Fatalf("stale epoch: %+v", res)
	}
	if res = fs.resolve(sessionRequest{id: id + 1, epoch: 1}); res.err != kerr.FetchSessionIDNotFound {
		t.Fatalf("unknown session: %+v", res)
	}

	// Epoch -1 closes the session and fetches sessionless.
	res = fs.resolve(sessionRequest{id: id, epoch: -1, full: []fetchTarget{target("a", 0, 1)}})
	if res.err != nil || res.responseID != 0 || len(res.targets) != 1 {
		t.Fatalf("close: %+v", res)
	}
	if res = fs.resolve(sessionRequest{id: id, epoch: 3}); res.err != kerr.FetchSessionIDNotFound {
		t.Fatalf("closed session still answers: %+v", res)
	}
}

func TestFetchSessionChanges(t *testing.T) {
	fs := newFetchSessions(10)
	res := fs.resolve(sessionRequest{epoch: 0, full: []fetchTarget{target("a", 0, 0)}})
	sp := res.targets[0].session
	if !fs.changed(sp, 0, 0, 0) {
		t.Fatal("a partition never sent must count as changed")
	}
	fs.commit(sp, 10, 10, 0)
	if fs.changed(sp, 10, 10, 0) {
		t.Fatal("unchanged offsets count as changed")
	}
	for _, c := range [][3]int64{{11, 10, 0}, {10, 11, 0}, {10, 10, 1}} {
		if !fs.changed(sp, c[0], c[1], c[2]) {
			t.Fatalf("change %v not seen", c)
		}
	}
}

func TestFetchSessionEviction(t *testing.T) {
	fs := newFetchSessions(2)
	first := fs.resolve(sessionRequest{epoch: 0}).responseID
	second := fs.resolve(sessionRequest{epoch: 0}).responseID
	// Use the first, so the second is the least recently used.
	if res := fs.resolve(sessionRequest{id: first, epoch: 1}); res.err != nil {
		t.Fatal(res.err)
	}
	third := fs.resolve(sessionRequest{epoch: 0}).responseID
	if third == 0 {
		t.Fatal("no session created when the cache was full")
	}
	if res := fs.resolve(sessionRequest{id: second, epoch: 1}); res.err != kerr.FetchSessionIDNotFound {
		t.Fatalf("least recently used session not evicted: %+v", res)
	}
	if res := fs.resolve(sessionRequest{id: first, epoch: 2}); res.err != nil {
		t.Fatalf("recently used session evicted: %+v", res)
	}
}

func TestFetchSessionsDisabled(t *testing.T) {
	fs := newFetchSessions(0)
	res := fs.resolve(sessionRequest{epoch: 0, full: []fetchTarget{target("a", 0, 0)}})
	if res.responseID != 0 || res.err != nil || len(res.targets) != 1 {
		t.Fatalf("disabled sessions: %+v", res)
	}
}

func TestNextSessionEpochWraps(t *testing.T) {
	if got := nextSessionEpoch(math.MaxInt32); got != 1 {
		t.Fatalf("wrap gives %d, want 1", got)
	}
	if got := nextSessionEpoch(5); got != 6 {
		t.Fatalf("got %d", got)
	}
}
