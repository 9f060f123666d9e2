package partition

import "github.com/sluice-io/sluice/log"

// LogStats returns the size and segment count of the replica's log, for
// metrics. It takes no lock and allocates nothing; after Close it reports
// zero. Safe for concurrent use.
func (r *Replica) LogStats() log.Stats { return r.log.Stats() }
