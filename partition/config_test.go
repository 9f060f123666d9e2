package partition

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(c *Config)
		wantErr string // substring; empty for valid
	}{
		{"default", func(c *Config) {}, ""},
		{"log append time", func(c *Config) { c.TimestampType = LogAppendTime }, ""},
		{"zero max message bytes", func(c *Config) { c.MaxMessageBytes = 0 }, "partition: max.message.bytes 0 must be positive"},
		{"negative max message bytes", func(c *Config) { c.MaxMessageBytes = -5 }, "max.message.bytes -5 must be positive"},
		{"max message bytes below a header", func(c *Config) { c.MaxMessageBytes = 60 }, "at least the 61-byte batch header"},
		{"huge max message bytes", func(c *Config) { c.MaxMessageBytes = 1 << 40 }, "must be at most 2147483647"},
		{"unknown timestamp type", func(c *Config) { c.TimestampType = 7 }, "message.timestamp.type 7"},
		{"bad log config", func(c *Config) { c.Log.SegmentBytes = 0 }, "partition: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if c := DefaultConfig(); c.MaxMessageBytes != 1048588 || c.TimestampType != CreateTime {
		t.Fatalf("DefaultConfig = %+v", c)
	}
	if _, err := Open("/nowhere", "t", 0, Config{}, Options{FS: newEnv(t).fs}); err == nil {
		t.Fatal("Open accepted a zero Config")
	}
}

func TestTimestampTypeString(t *testing.T) {
	for tt, want := range map[TimestampType]string{CreateTime: "CreateTime", LogAppendTime: "LogAppendTime", 9: "TimestampType(9)"} {
		if got := tt.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", tt, got, want)
		}
	}
}
