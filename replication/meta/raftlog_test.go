package meta

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestRaftLogsGoToZap checks that Raft's own lines reach the zap logger,
// named and at their level, and the group's lifecycle events too.
func TestRaftLogsGoToZap(t *testing.T) {
	ctx := testContext(t)
	core, logs := observer.New(zapcore.DebugLevel)
	c := newTestCluster(t)
	n := c.start(testConfig(member(1), members(1)), Options{Logger: zap.New(core)})
	waitState(ctx, t, n.g, "initialised", (*State).Initialized)
	c.stop(1)

	if got := logs.FilterLoggerName("meta.raft").FilterMessage("raft").Len(); got == 0 {
		t.Fatal("no Raft lines reached zap")
	}
	if logs.FilterLoggerName("meta.raft").Filter(func(e observer.LoggedEntry) bool { return e.Level == zapcore.WarnLevel }).Len() == 0 {
		t.Error(`no Raft warning mapped to WarnLevel (a fresh node always warns "heartbeat timeout reached, starting election")`)
	}
	for _, msg := range []string{"bootstrapped metadata group", "initialised cluster", "joined cluster"} {
		if logs.FilterLoggerName("meta").FilterMessage(msg).Len() != 1 {
			t.Errorf("expected one %q line, have %v", msg, logs.FilterLoggerName("meta").All())
		}
	}
	for _, e := range logs.FilterLoggerName("meta").All() {
		if e.ContextMap()["node"] != int32(1) {
			t.Errorf("line %q lacks the node field: %v", e.Message, e.ContextMap())
		}
	}
}
