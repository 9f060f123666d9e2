//go:build unix

package main

import (
	"syscall"

	"go.uber.org/zap"
)

// raiseOpenFileLimit raises the process's soft limit on open files
// (RLIMIT_NOFILE) to its hard limit and logs both. A partition keeps its
// active segment's log, offset index and time index open, and its Raft
// log's two files, and sealed segments being read share a cache
// (log.max.open.sealed.files): 1,000 partitions need about 6,500, more
// than the soft limit of 1,024 many systems start processes with. When the limit stays
// under recommendedOpenFiles it says so at Warn, with the fix. It returns
// the soft limit in force.
func raiseOpenFileLimit(logger *zap.Logger) (soft uint64, known bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn("cannot read the open file limit", zap.Error(err))
		return 0, false
	}
	was := lim.Cur
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			logger.Warn("cannot raise the open file limit to the hard limit",
				zap.Uint64("soft", uint64(lim.Cur)), zap.Uint64("hard", uint64(lim.Max)), zap.Error(err))
		} else {
			lim = raised
		}
	}
	logger.Info("open file limit", zap.Uint64("soft", uint64(lim.Cur)), zap.Uint64("hard", uint64(lim.Max)),
		zap.Uint64("soft-at-start", uint64(was)))
	if lim.Cur < recommendedOpenFiles {
		logger.Warn("open file limit is low for many partitions: each keeps 5 files open (its active segment's 3 and its Raft log's 2); raise the hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf)",
			zap.Uint64("limit", uint64(lim.Cur)), zap.Uint64("recommended", recommendedOpenFiles))
	}
	return uint64(lim.Cur), true
}
