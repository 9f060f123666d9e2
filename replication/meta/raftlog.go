package meta

import (
	"bytes"
	"io"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newRaftLogger returns an hclog.Logger for Raft that writes to logger,
// or discards when logger is disabled.
func newRaftLogger(logger *zap.Logger) hclog.Logger {
	if !logger.Core().Enabled(zapcore.ErrorLevel) {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Info,
		Output:      raftLogWriter{logger: logger.Named("raft")},
		DisableTime: true,
	})
}

// raftLogWriter turns hclog's lines ("[WARN]  raft: message: k=v") into
// zap entries at the matching level.
type raftLogWriter struct {
	logger *zap.Logger
}

func (w raftLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := zapcore.InfoLevel
	for prefix, l := range map[string]zapcore.Level{"[TRACE]": zapcore.DebugLevel, "[DEBUG]": zapcore.DebugLevel, "[WARN]": zapcore.WarnLevel, "[ERROR]": zapcore.ErrorLevel} {
		if len(line) >= len(prefix) && line[:len(prefix)] == prefix {
			level = l
		}
	}
	if ce := w.logger.Check(level, "raft"); ce != nil {
		ce.Write(zap.String("line", line))
	}
	return len(p), nil
}

var _ io.Writer = raftLogWriter{}
