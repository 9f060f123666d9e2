//go:build !unix

package main

import "go.uber.org/zap"

// raiseOpenFileLimit does nothing where there is no RLIMIT_NOFILE.
func raiseOpenFileLimit(logger *zap.Logger) (soft uint64, known bool) { return 0, false }
