package replication

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// DefaultMinFreeBytes is the default of Config.MinFreeBytes
// (storage.min.free.bytes): 1 GiB.
const DefaultMinFreeBytes = 1 << 30

// DefaultSpaceCheckInterval is the default of Config.SpaceCheckInterval.
const DefaultSpaceCheckInterval = time.Second

// Statfs reports the bytes available to the broker (what df calls
// Avail) and the size of the filesystem holding path.
type Statfs func(path string) (free, total uint64, err error)

// SpaceState is what the free-space check last saw of the data dir's
// filesystem.
type SpaceState struct {
	// Dir is the data dir checked.
	Dir string
	// FreeBytes and TotalBytes are the filesystem's available bytes and
	// size at the last check; both 0 before the first.
	FreeBytes, TotalBytes uint64
	// MinFreeBytes is storage.min.free.bytes in force; 0 disables the
	// check.
	MinFreeBytes int64
	// Low is set while FreeBytes is below MinFreeBytes: appends (produce,
	// group commits) are refused with KAFKA_STORAGE_ERROR.
	Low bool
	// CheckErr is why the last check could not read the filesystem's
	// space (nil when it could); appends are not refused for it.
	CheckErr error
	// Checked is when the last check ran.
	Checked time.Time
}

// spaceGuard refuses appends while the data dir's filesystem has fewer
// than storage.min.free.bytes available, so that no segment is half
// written when the disk fills; it checks with statfs on a timer (not per
// request), and appends are admitted again as soon as a check sees space
// come back. Its goroutine is started by start and stopped by close.
type spaceGuard struct {
	dir      string
	statfs   Statfs
	interval time.Duration
	now      func() time.Time
	logger   *zap.Logger

	minFree atomic.Int64
	// state is the last check's outcome; refusal is its admission error,
	// built once per change so that admit allocates nothing.
	state   atomic.Pointer[SpaceState]
	refusal atomic.Pointer[error]

	recheck chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
}

// newSpaceGuard returns a guard over dir that has checked once.
func newSpaceGuard(dir string, minFree int64, interval time.Duration, statfs Statfs, now func() time.Time, logger *zap.Logger) *spaceGuard {
	g := &spaceGuard{dir: dir, statfs: statfs, interval: interval, now: now, logger: logger, recheck: make(chan struct{}, 1), stop: make(chan struct{})}
	g.minFree.Store(minFree)
	g.state.Store(&SpaceState{Dir: dir, MinFreeBytes: minFree})
	g.check()
	return g
}

// start runs the periodic check until close.
func (g *spaceGuard) start() {
	g.done.Add(1)
	go g.loop()
}

func (g *spaceGuard) loop() {
	defer g.done.Done()
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		case <-g.recheck:
		}
		g.check()
	}
}

// close stops the check and waits for its goroutine.
func (g *spaceGuard) close() {
	close(g.stop)
	g.done.Wait()
}

// setMinFree changes the threshold (a dynamic broker config) and has the
// loop check again at once.
func (g *spaceGuard) setMinFree(n int64) {
	if g.minFree.Swap(n) == n {
		return
	}
	select {
	case g.recheck <- struct{}{}:
	default:
	}
}

// check reads the filesystem's space, publishes the state and logs a
// change of Low.
func (g *spaceGuard) check() {
	minFree := g.minFree.Load()
	prev := g.state.Load()
	st := &SpaceState{Dir: g.dir, MinFreeBytes: minFree, Checked: g.now()}
	free, total, err := g.statfs(g.dir)
	if err != nil {
		// Keep the last reading: a failing statfs alone proves nothing
		// about the space, and the appends themselves fail if the disk
		// does.
		st.FreeBytes, st.TotalBytes, st.CheckErr = prev.FreeBytes, prev.TotalBytes, err
		if prev.CheckErr == nil {
			g.logger.Warn("cannot read free space of the data dir", zap.String("dir", g.dir), zap.Error(err))
		}
	} else {
		st.FreeBytes, st.TotalBytes = free, total
	}
	st.Low = minFree > 0 && st.FreeBytes < uint64(minFree) && (err == nil || prev.Low)
	if st.Low {
		refusal := fmt.Errorf("disk %s has %d bytes free, below storage.min.free.bytes %d: %w", g.dir, st.FreeBytes, minFree, kerr.KafkaStorageError)
		g.refusal.Store(&refusal)
	} else {
		g.refusal.Store(nil)
	}
	g.state.Store(st)
	switch {
	case st.Low && !prev.Low:
		g.logger.Warn("disk has too little free space, refusing appends with KAFKA_STORAGE_ERROR until it has more",
			zap.String("dir", g.dir), zap.Uint64("free-bytes", st.FreeBytes), zap.Int64("storage-min-free-bytes", minFree))
	case !st.Low && prev.Low:
		g.logger.Info("disk has free space again, accepting appends",
			zap.String("dir", g.dir), zap.Uint64("free-bytes", st.FreeBytes), zap.Int64("storage-min-free-bytes", minFree))
	}
}

// admit returns nil when appends may go on, else KAFKA_STORAGE_ERROR
// saying how much space is left. It costs one atomic load.
func (g *spaceGuard) admit() error {
	if p := g.refusal.Load(); p != nil {
		return *p
	}
	return nil
}
