package quota

import (
	"fmt"
	"math"
	"sort"
)

// Quota keys Sluice enforces.
const (
	// ProducerByteRate bounds the bytes per second a client produces.
	ProducerByteRate = "producer_byte_rate"
	// ConsumerByteRate bounds the bytes per second a client fetches.
	ConsumerByteRate = "consumer_byte_rate"
	// RequestPercentage bounds the time the broker spends on a client's
	// requests, in percent of one thread, per second.
	RequestPercentage = "request_percentage"
)

// Keys lists the quota keys Sluice enforces.
var Keys = []string{ProducerByteRate, ConsumerByteRate, RequestPercentage}

// Quota is the values set for one entity.
type Quota struct {
	Entity Entity             `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// Set is every quota of the cluster, by Entity.Key. A Set is never
// modified once built: Apply returns a new one. The zero Set is empty.
type Set map[string]Quota

// Op is one change of an AlterClientQuotas entry: set Key to Value, or
// remove it.
type Op struct {
	Key    string  `json:"key"`
	Value  float64 `json:"value,omitempty"`
	Remove bool    `json:"remove,omitempty"`
}

// Change is the ops of one entity.
type Change struct {
	Entity Entity `json:"entity"`
	Ops    []Op   `json:"ops"`
}

// Validate checks a change as Kafka does: known keys, each at most once,
// values finite and positive, request_percentage at most what a broker
// can give.
func Validate(c Change) error {
	seen := map[string]bool{}
	for _, op := range c.Ops {
		if seen[op.Key] {
			return fmt.Errorf("quota %s given twice for %s", op.Key, c.Entity)
		}
		seen[op.Key] = true
		known := false
		for _, k := range Keys {
			known = known || k == op.Key
		}
		if !known {
			return fmt.Errorf("unknown quota %q; Sluice enforces %s, %s and %s", op.Key, ProducerByteRate, ConsumerByteRate, RequestPercentage)
		}
		if op.Remove {
			continue
		}
		if math.IsNaN(op.Value) || math.IsInf(op.Value, 0) || op.Value <= 0 {
			return fmt.Errorf("quota %s=%v for %s: must be a positive number", op.Key, op.Value, c.Entity)
		}
	}
	return nil
}

// Apply returns s with the changes made, in order. A value removed that is
// not set is no error (Kafka's behaviour); an entity left with no values
// is dropped.
func (s Set) Apply(changes []Change) Set {
	next := make(Set, len(s)+len(changes))
	for k, q := range s {
		next[k] = q
	}
	for _, c := range changes {
		key := c.Entity.Key()
		values := map[string]float64{}
		for k, v := range next[key].Values {
			values[k] = v
		}
		for _, op := range c.Ops {
			if op.Remove {
				delete(values, op.Key)
			} else {
				values[op.Key] = op.Value
			}
		}
		if len(values) == 0 {
			delete(next, key)
			continue
		}
		next[key] = Quota{Entity: c.Entity, Values: values}
	}
	return next
}

// Sorted returns the quotas in entity key order.
func (s Set) Sorted() []Quota {
	qs := make([]Quota, 0, len(s))
	for _, q := range s {
		qs = append(qs, q)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Entity.Key() < qs[j].Entity.Key() })
	return qs
}
