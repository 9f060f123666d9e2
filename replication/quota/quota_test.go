package quota

import (
	"math"
	"testing"
)

func set(t *testing.T, changes ...Change) Set {
	t.Helper()
	for _, c := range changes {
		if err := Validate(c); err != nil {
			t.Fatal(err)
		}
	}
	return Set(nil).Apply(changes)
}

func rate(e Entity, v float64) Change {
	return Change{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: v}}}
}

// Each level of Kafka's precedence wins over every level below it.
func TestResolvePrecedence(t *testing.T) {
	levels := []Entity{
		{User: Named("alice"), ClientID: Named("app")},
		{User: Named("alice"), ClientID: DefaultName()},
		{User: Named("alice")},
		{User: DefaultName(), ClientID: Named("app")},
		{User: DefaultName(), ClientID: DefaultName()},
		{User: DefaultName()},
		{ClientID: Named("app")},
		{ClientID: DefaultName()},
	}
	for top := range levels {
		var changes []Change
		for i := top; i < len(levels); i++ {
			changes = append(changes, rate(levels[i], float64(100+i)))
		}
		s := set(t, changes...)
		r, ok := s.Resolve("alice", "app", ProducerByteRate)
		if !ok || r.Limit != float64(100+top) || r.Entity.Key() != levels[top].Key() {
			t.Fatalf("levels %d..: resolved %+v (ok %v), want level %d", top, r, ok, top)
		}
		// Another user and client id fall to the defaults only.
		r, ok = s.Resolve("bob", "other", ProducerByteRate)
		if ok && r.Entity.User != nil && !r.Entity.User.Default {
			t.Fatalf("bob resolved to %s", r.Entity)
		}
	}
	if _, ok := set(t, rate(Entity{User: Named("alice")}, 1)).Resolve("alice", "app", ConsumerByteRate); ok {
		t.Fatal("a key no entity sets resolved")
	}
}

// Keys resolve independently: a higher level that does not set a key
// leaves it to a lower one.
func TestResolvePerKey(t *testing.T) {
	s := set(t,
		Change{Entity: Entity{User: Named("alice")}, Ops: []Op{{Key: ConsumerByteRate, Value: 5}}},
		Change{Entity: Entity{ClientID: DefaultName()}, Ops: []Op{{Key: ProducerByteRate, Value: 7}}},
	)
	if r, ok := s.Resolve("alice", "x", ProducerByteRate); !ok || r.Limit != 7 {
		t.Fatalf("producer rate %+v %v", r, ok)
	}
	if r, ok := s.Resolve("alice", "x", ConsumerByteRate); !ok || r.Limit != 5 {
		t.Fatalf("consumer rate %+v %v", r, ok)
	}
}

// A default gives each name its own bucket; a named entity one shared
// bucket.
func TestResolveBuckets(t *testing.T) {
	s := set(t, rate(Entity{ClientID: DefaultName()}, 1))
	a, _ := s.Resolve(Anonymous, "a", ProducerByteRate)
	b, _ := s.Resolve(Anonymous, "b", ProducerByteRate)
	if a.Bucket == b.Bucket || a.Bucket.HasUser {
		t.Fatalf("default client-id buckets %+v %+v", a.Bucket, b.Bucket)
	}
	s = set(t, rate(Entity{User: Named("u")}, 1))
	a, _ = s.Resolve("u", "a", ProducerByteRate)
	b, _ = s.Resolve("u", "b", ProducerByteRate)
	if a.Bucket != b.Bucket || a.Bucket.HasClientID {
		t.Fatalf("user buckets %+v %+v", a.Bucket, b.Bucket)
	}
}

func TestValidateAndApply(t *testing.T) {
	e := Entity{ClientID: Named("c")}
	for _, bad := range []Change{
		{Entity: e, Ops: []Op{{Key: "bogus", Value: 1}}},
		{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: 0}}},
		{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: -1}}},
		{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: math.NaN()}}},
		{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: math.Inf(1)}}},
		{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: 1}, {Key: ProducerByteRate, Remove: true}}},
	} {
		if Validate(bad) == nil {
			t.Errorf("%+v validated", bad.Ops)
		}
	}
	s := set(t, Change{Entity: e, Ops: []Op{{Key: ProducerByteRate, Value: 1}, {Key: ConsumerByteRate, Value: 2}}})
	s2 := s.Apply([]Change{{Entity: e, Ops: []Op{{Key: ProducerByteRate, Remove: true}}}})
	if len(s[e.Key()].Values) != 2 {
		t.Fatal("Apply modified its receiver")
	}
	if v := s2[e.Key()].Values; len(v) != 1 || v[ConsumerByteRate] != 2 {
		t.Fatalf("after remove: %v", v)
	}
	s3 := s2.Apply([]Change{{Entity: e, Ops: []Op{{Key: ConsumerByteRate, Remove: true}}}})
	if len(s3) != 0 {
		t.Fatalf("an entity with no values is kept: %v", s3)
	}
}

func TestMatch(t *testing.T) {
	s := set(t,
		rate(Entity{User: Named("u")}, 1),
		rate(Entity{User: Named("u"), ClientID: Named("c")}, 2),
		rate(Entity{ClientID: DefaultName()}, 3),
	)
	name := "u"
	got, err := s.Match([]Filter{{Type: TypeUser, Match: MatchExact, Name: &name}}, false)
	if err != nil || len(got) != 2 {
		t.Fatalf("user=u: %v %v", got, err)
	}
	got, _ = s.Match([]Filter{{Type: TypeUser, Match: MatchExact, Name: &name}}, true)
	if len(got) != 1 || got[0].Entity.ClientID != nil {
		t.Fatalf("user=u strict: %v", got)
	}
	got, _ = s.Match([]Filter{{Type: TypeClientID, Match: MatchDefault}}, false)
	if len(got) != 1 || !got[0].Entity.ClientID.Default {
		t.Fatalf("client-id default: %v", got)
	}
	got, _ = s.Match([]Filter{{Type: TypeClientID, Match: MatchAny}}, false)
	if len(got) != 2 {
		t.Fatalf("client-id any: %v", got)
	}
	if _, err := s.Match([]Filter{{Type: "ip", Match: MatchAny}}, false); err == nil {
		t.Fatal("ip filter accepted")
	}
	if _, err := s.Match([]Filter{{Type: TypeUser, Match: MatchExact}}, false); err == nil {
		t.Fatal("exact match without a name accepted")
	}
}

func TestFromComponents(t *testing.T) {
	c := "c"
	e, err := FromComponents([]Component{{Type: TypeClientID, Name: &c}, {Type: TypeUser}})
	if err != nil || e.Key() != `user=<default>,client-id="c"` {
		t.Fatalf("%v %v", e.Key(), err)
	}
	if got := e.Components(); len(got) != 2 || got[0].Type != TypeUser || got[0].Name != nil || *got[1].Name != "c" {
		t.Fatalf("components %+v", got)
	}
	for _, bad := range [][]Component{nil, {{Type: "ip"}}, {{Type: "x"}}, {{Type: TypeUser}, {Type: TypeUser}}} {
		if _, err := FromComponents(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
