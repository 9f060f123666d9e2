package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
)

func TestCleanupDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Replication.Partition
	want := partition.DefaultConfig()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"cleanup policy", p.CleanupPolicy, want.CleanupPolicy},
		{"retention time", p.RetentionTime, want.RetentionTime},
		{"retention bytes", p.RetentionBytes, want.RetentionBytes},
		{"delete retention", p.DeleteRetention, want.DeleteRetention},
		{"min compaction lag", p.MinCompactionLag, want.MinCompactionLag},
		{"max compaction lag", p.MaxCompactionLag, want.MaxCompactionLag},
		{"dirty ratio", p.MinCleanableDirtyRatio, want.MinCleanableDirtyRatio},
		{"before max", p.TimestampBeforeMax, want.TimestampBeforeMax},
		{"after max", p.TimestampAfterMax, want.TimestampAfterMax},
		{"cleaner", cfg.Replication.Cleaner, cleaner.DefaultConfig()},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if err := cfg.Replication.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestRetentionPrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want time.Duration
	}{
		{"default", nil, 7 * 24 * time.Hour},
		{"hours", []string{"--log-retention-hours=2"}, 2 * time.Hour},
		{"minutes over hours", []string{"--log-retention-hours=2", "--log-retention-minutes=3"}, 3 * time.Minute},
		{"ms over minutes and hours", []string{"--log-retention-hours=2", "--log-retention-minutes=3", "--log-retention-ms=4000"}, 4 * time.Second},
		{"ms -1 keeps forever", []string{"--log-retention-ms=-1"}, -time.Millisecond},
		{"hours -1 keeps forever", []string{"--log-retention-hours=-1"}, -time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, nil, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Replication.Partition.RetentionTime; got != tt.want {
				t.Fatalf("retention %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCleanupKeysFromFileAndEnv(t *testing.T) {
	path := writeConfig(t, `
log:
  cleanup.policy: compact,delete
  retention.bytes: 1000
  retention.check.interval.ms: 200
  cleaner:
    enable: false
    backoff.ms: 300
    min.cleanable.ratio: 0.01
    delete.retention.ms: 5
  message.timestamp.before.max.ms: 60000
`)
	cfg, err := load(t, map[string]string{"SLUICE_LOG_CLEANER_DEDUPE_BUFFER_SIZE": "1048576"}, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	p, c := cfg.Replication.Partition, cfg.Replication.Cleaner
	if p.CleanupPolicy != partition.CleanupCompact|partition.CleanupDelete || p.RetentionBytes != 1000 ||
		p.MinCleanableDirtyRatio != 0.01 || p.DeleteRetention != 5*time.Millisecond || p.TimestampBeforeMax != time.Minute ||
		p.TimestampAfterMax != math.MaxInt64 {
		t.Errorf("partition defaults %+v", p)
	}
	if c.RetentionCheckInterval != 200*time.Millisecond || c.Enable || c.Backoff != 300*time.Millisecond || c.DedupeBufferSize != 1<<20 {
		t.Errorf("cleaner %+v", c)
	}
}

func TestCleanupInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		key  string
	}{
		{"policy", []string{"--log-cleanup-policy=forever"}, keyLogCleanupPolicy},
		{"ratio", []string{"--log-cleaner-min-cleanable-ratio=2"}, keyLogCleanerMinCleanable},
		{"retention ms", []string{"--log-retention-ms=-2"}, keyLogRetentionMs},
		{"check interval", []string{"--log-retention-check-interval-ms=0"}, keyLogRetentionCheckInterval},
		{"dedupe buffer", []string{"--log-cleaner-dedupe-buffer-size=10"}, keyLogCleanerDedupeBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err %v, want one naming %s", err, tt.key)
			}
		})
	}
}
