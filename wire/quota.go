package wire

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/quota"
)

// Quota windows, as Kafka's defaults quota.window.num (11) and
// quota.window.size.seconds (1): a rate is measured over the last 11
// one-second samples.
const (
	quotaSamples = 11
	quotaWindow  = time.Second
	// quotaIdle is how long a client's rate is kept without traffic.
	quotaIdle = time.Hour
)

// quotaKind indexes QuotaStats.
type quotaKind int

const (
	quotaProduce quotaKind = iota
	quotaFetch
	quotaRequest
	quotaKinds
)

// QuotaStats counts throttling, for metrics.
type QuotaStats struct {
	// Throttled counts responses throttled, by quota: produce
	// (producer_byte_rate), fetch (consumer_byte_rate), request
	// (request_percentage).
	Throttled [3]int64
	// ThrottleTime is the throttle time given, by quota, as Throttled.
	ThrottleTime [3]time.Duration
	// Clients is how many rate sensors are kept (one per quota bucket).
	Clients int
}

// QuotaKinds names QuotaStats' indexes.
var QuotaKinds = [3]string{"produce", "fetch", "request"}

// quotaManager measures what each client uses against its client quotas
// (package quota resolves which applies) and says how long to throttle
// it, with Kafka's formula: a client whose rate O over the window W is
// above its quota T is throttled (O-T)/T*W, at most W. Safe for
// concurrent use.
type quotaManager struct {
	mu      sync.Mutex
	sensors map[sensorKey]*rateSensor
	swept   time.Time

	throttled    [quotaKinds]atomic.Int64
	throttleTime [quotaKinds]atomic.Int64
}

// sensorKey is one quota key of one bucket: who shares the usage.
type sensorKey struct {
	key    string
	bucket quota.Bucket
}

// rateSensor is a windowed rate: quotaSamples samples of quotaWindow.
type rateSensor struct {
	// samples[i] holds the total of window start[i] (unix windows).
	start   [quotaSamples]int64
	samples [quotaSamples]float64
	last    time.Time
}

func newQuotaManager() *quotaManager {
	return &quotaManager{sensors: map[sensorKey]*rateSensor{}}
}

// record adds v to the bucket's sensor of key and returns how long the
// client must be throttled: zero while it is within its quota, or when no
// quota of key applies to it.
func (m *quotaManager) record(set quota.Set, user, clientID, key string, kind quotaKind, v float64, now time.Time) time.Duration {
	r, ok := set.Resolve(user, clientID, key)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	sk := sensorKey{key: key, bucket: r.Bucket}
	s := m.sensors[sk]
	if s == nil {
		s = &rateSensor{}
		m.sensors[sk] = s
	}
	s.add(now, v)
	rate, span := s.rate(now)
	if rate <= r.Limit {
		return 0
	}
	d := time.Duration((rate - r.Limit) / r.Limit * float64(span))
	d = min(d, quotaSamples*quotaWindow)
	m.throttled[kind].Add(1)
	m.throttleTime[kind].Add(int64(d))
	return d
}

// unrecord takes v back: a fetch that was throttled sends no data.
func (m *quotaManager) unrecord(set quota.Set, user, clientID, key string, v float64, now time.Time) {
	r, ok := set.Resolve(user, clientID, key)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sensors[sensorKey{key: key, bucket: r.Bucket}]; s != nil {
		s.add(now, -v)
	}
}

// sweepLocked drops sensors idle for quotaIdle, at most once a minute.
func (m *quotaManager) sweepLocked(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	for k, s := range m.sensors {
		if now.Sub(s.last) > quotaIdle {
			delete(m.sensors, k)
		}
	}
}

// stats returns the counters.
func (m *quotaManager) stats() QuotaStats {
	var st QuotaStats
	for i := range quotaKinds {
		st.Throttled[i] = m.throttled[i].Load()
		st.ThrottleTime[i] = time.Duration(m.throttleTime[i].Load())
	}
	m.mu.Lock()
	st.Clients = len(m.sensors)
	m.mu.Unlock()
	return st
}

// add records v at now.
func (s *rateSensor) add(now time.Time, v float64) {
	w := now.UnixNano() / int64(quotaWindow)
	i := int(w % quotaSamples)
	if s.start[i] != w {
		s.start[i], s.samples[i] = w, 0
	}
	s.samples[i] += v
	s.last = now
}

// rate returns the rate per second over the live samples, and the span it
// is measured over: from the oldest live sample's start to now, at least
// one window. Kafka measures a new client over at least quotaSamples-1
// windows, which lets it send ten seconds' worth at once before it is
// throttled; measured from its first sample, a client is held to its
// quota from its first second.
func (s *rateSensor) rate(now time.Time) (float64, time.Duration) {
	w := now.UnixNano() / int64(quotaWindow)
	var total float64
	oldest := w
	for i := range quotaSamples {
		if s.start[i] > w-quotaSamples && s.start[i] <= w {
			total += s.samples[i]
			oldest = min(oldest, s.start[i])
		}
	}
	span := now.Sub(time.Unix(0, oldest*int64(quotaWindow)))
	span = max(span, quotaWindow)
	return total / span.Seconds(), span
}

// requestQuotaExempt reports APIs not charged to request_percentage:
// ApiVersions, which a throttled client needs to reconnect.
func requestQuotaExempt(key int16) bool { return key == apiVersionsKey }

// produceBytes is what a Produce request charges producer_byte_rate: its
// record bytes, as Kafka counts them.
func produceBytes(req *kmsg.ProduceRequest) int {
	n := 0
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
	}
	return n
}

// fetchBytes is what a Fetch response charges consumer_byte_rate.
func fetchBytes(resp *kmsg.FetchResponse) int {
	n := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches)
		}
	}
	return n
}

// throttleMillis converts a throttle to the protocol's milliseconds.
func throttleMillis(d time.Duration) int32 {
	return int32(min(math.Ceil(float64(d)/float64(time.Millisecond)), math.MaxInt32))
}
