package admin

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Readiness decides /readyz: the node is ready when every check passes.
// `sluice serve` adds "data" (the data dir is loaded) and "serving" (the
// Kafka listener accepts requests); a cluster adds its own (joined, knows
// the metadata leader) with Add, without changing this type. Safe for
// concurrent use.
type Readiness struct {
	mu     sync.Mutex
	checks []check
}

type check struct {
	name string
	fn   func() error
}

// Add appends a named check: fn returns nil when the node is ready as far
// as it knows, or an error saying why not. fn must not block; it runs on
// every /readyz request.
func (r *Readiness) Add(name string, fn func() error) {
	r.mu.Lock()
	r.checks = append(r.checks, check{name: name, fn: fn})
	r.mu.Unlock()
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Name string
	// Err is nil when the check passed.
	Err error
}

// Check runs every check in the order added and reports whether all
// passed. No checks means ready.
func (r *Readiness) Check() (ready bool, results []CheckResult) {
	r.mu.Lock()
	checks := r.checks
	r.mu.Unlock()
	ready = true
	for _, c := range checks {
		err := c.fn()
		ready = ready && err == nil
		results = append(results, CheckResult{Name: c.name, Err: err})
	}
	return ready, results
}

// Flag is a readiness condition set and cleared by its owner: Check
// returns the reason given to New until Set(true). The zero value is not
// usable; use NewFlag. Safe for concurrent use.
type Flag struct {
	ok     atomic.Bool
	reason error
}

// NewFlag returns a cleared flag whose Check reports reason.
func NewFlag(reason string) *Flag { return &Flag{reason: errors.New(reason)} }

// Set sets or clears the flag.
func (f *Flag) Set(ok bool) { f.ok.Store(ok) }

// Check returns nil when the flag is set, its reason otherwise.
func (f *Flag) Check() error {
	if f.ok.Load() {
		return nil
	}
	return f.reason
}
