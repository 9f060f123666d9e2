package wire

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/replication/quota"
)

func quotaSet(key string, limit float64) quota.Set {
	return quota.Set(nil).Apply([]quota.Change{{
		Entity: quota.Entity{ClientID: quota.DefaultName()},
		Ops:    []quota.Op{{Key: key, Value: limit}},
	}})
}

// A client within its quota is not throttled; one over it is throttled by
// Kafka's formula (O-T)/T*W, and a client paced by its throttle times
// averages its quota.
func TestQuotaThrottleFormula(t *testing.T) {
	m := newQuotaManager()
	set := quotaSet(quota.ProducerByteRate, 1000)
	start := time.Unix(1_000_000, 0)
	if d := m.record(set, quota.Anonymous, "c", quota.ProducerByteRate, quotaProduce, 5000, start); d == 0 {
		t.Fatal("5000 bytes in a client's first second: not throttled under a quota of 1000 B/s")
	}
	// Ten seconds on, 9000 bytes over 10 s: within the quota.
	now := start.Add(10 * time.Second)
	if d := m.record(set, quota.Anonymous, "c", quota.ProducerByteRate, quotaProduce, 4000, now); d != 0 {
		t.Fatalf("throttled %s within the quota", d)
	}
	// 11000 more: 20000 over 10 s = 2000 B/s, twice the quota: throttle
	// (2000-1000)/1000 * 10 s = 10 s.
	if d := m.record(set, quota.Anonymous, "c", quota.ProducerByteRate, quotaProduce, 11000, now); d != 10*time.Second {
		t.Fatalf("throttle %s, want 10s", d)
	}
	// Another client id has its own bucket under the default.
	if d := m.record(set, quota.Anonymous, "other", quota.ProducerByteRate, quotaProduce, 100, now); d != 0 {
		t.Fatalf("another client throttled %s", d)
	}
	// No quota for fetches: never throttled.
	if d := m.record(set, quota.Anonymous, "c", quota.ConsumerByteRate, quotaFetch, 1e9, now); d != 0 {
		t.Fatalf("a key without a quota throttled %s", d)
	}
	st := m.stats()
	if st.Throttled[quotaProduce] != 2 || st.ThrottleTime[quotaProduce] < 10*time.Second || st.Clients != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A client that waits out each throttle before sending again converges on
// its quota.
func TestQuotaPacedClientAveragesItsQuota(t *testing.T) {
	m := newQuotaManager()
	const limit = 100_000.0
	set := quotaSet(quota.ProducerByteRate, limit)
	start := time.Unix(2_000_000, 0)
	now := start
	var sent float64
	for now.Sub(start) < 60*time.Second {
		const chunk = 16 << 10
		d := m.record(set, quota.Anonymous, "c", quota.ProducerByteRate, quotaProduce, chunk, now)
		sent += chunk
		now = now.Add(max(d, time.Millisecond))
	}
	rate := sent / now.Sub(start).Seconds()
	if rate < 0.9*limit || rate > 1.25*limit {
		t.Fatalf("paced client averaged %.0f B/s against a quota of %.0f", rate, limit)
	}
}

// A throttled fetch's bytes are taken back: the client fetches them again.
func TestQuotaUnrecord(t *testing.T) {
	m := newQuotaManager()
	set := quotaSet(quota.ConsumerByteRate, 1000)
	now := time.Unix(3_000_000, 0)
	if d := m.record(set, quota.Anonymous, "c", quota.ConsumerByteRate, quotaFetch, 50_000, now); d == 0 {
		t.Fatal("not throttled")
	}
	m.unrecord(set, quota.Anonymous, "c", quota.ConsumerByteRate, 50_000, now)
	if d := m.record(set, quota.Anonymous, "c", quota.ConsumerByteRate, quotaFetch, 1000, now); d != 0 {
		t.Fatalf("throttled %s after the bytes were taken back", d)
	}
}

func TestQuotaSensorsExpire(t *testing.T) {
	m := newQuotaManager()
	set := quotaSet(quota.ProducerByteRate, 1000)
	now := time.Unix(4_000_000, 0)
	m.record(set, quota.Anonymous, "a", quota.ProducerByteRate, quotaProduce, 1, now)
	m.record(set, quota.Anonymous, "b", quota.ProducerByteRate, quotaProduce, 1, now.Add(2*quotaIdle))
	if n := m.stats().Clients; n != 1 {
		t.Fatalf("%d sensors after an hour idle, want 1", n)
	}
}
