package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-io/sluice/partition"
)

// load parses args as serve's flags and loads the config, with env set for
// the test.
func load(t *testing.T, env map[string]string, args ...string) (config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(flags)
	if err := flags.Parse(args); err != nil {
		return config{}, err
	}
	v, err := newViper(flags)
	if err != nil {
		return config{}, err
	}
	return loadConfig(v)
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Replication
	p := r.Partition
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:9092"},
		{"data dir", r.DataDir, "./data"},
		{"advertised", r.AdvertisedHost + ":" + itoa(int64(r.AdvertisedPort)), "127.0.0.1:9092"},
		{"node id", r.NodeID, int32(1)},
		{"partitions", r.DefaultPartitions, int32(1)},
		{"auto create", r.AutoCreateTopics, true},
		{"flush interval", r.Flush.Interval, time.Duration(0)},
		{"segment bytes", p.Log.SegmentBytes, int64(1 << 30)},
		{"segment age", p.Log.SegmentAge, 7 * 24 * time.Hour},
		{"index interval", p.Log.IndexIntervalBytes, 4096},
		{"max message", p.MaxMessageBytes, 1048588},
		{"timestamp type", p.TimestampType, partition.CreateTime},
		{"max request", cfg.Wire.MaxRequestBytes, int32(100 << 20)},
		{"buffer pool", cfg.Wire.BufferPoolBytes, int64(64 << 20)},
		{"log format", cfg.LogFormat, "console"},
		{"log level", cfg.LogLevel.String(), "info"},
		{"admin listen", cfg.Admin.Listen, "127.0.0.1:9644"},
		{"admin pprof", cfg.Admin.Pprof, false},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if cfg.AdvertisedExplicit {
		t.Error("advertised address reported explicit without being set")
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeConfig(t, `
num.partitions: 2
node.id: 7
log:
  flush.mode: interval
  flush:
    interval.ms: 250
  message.timestamp.type: LogAppendTime
data.dir: /from/file
`)
	cfg, err := load(t, map[string]string{"SLUICE_NUM_PARTITIONS": "3", "SLUICE_NODE_ID": "8"},
		"--config", file, "--node-id", "9")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Replication
	if r.DefaultPartitions != 3 {
		t.Errorf("num.partitions = %d, want 3 (env over file)", r.DefaultPartitions)
	}
	if r.NodeID != 9 {
		t.Errorf("node.id = %d, want 9 (flag over env)", r.NodeID)
	}
	if r.DataDir != "/from/file" {
		t.Errorf("data.dir = %q, want /from/file", r.DataDir)
	}
	if r.Flush.Interval != 250*time.Millisecond {
		t.Errorf("flush interval = %s, want 250ms", r.Flush.Interval)
	}
	if r.Partition.TimestampType != partition.LogAppendTime {
		t.Errorf("timestamp type = %v, want LogAppendTime", r.Partition.TimestampType)
	}
}

func TestBufferPoolBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int64
		bad  bool
	}{
		{name: "flag", args: []string{"--socket-buffer-pool-bytes", "1048576"}, want: 1 << 20},
		{name: "env", env: map[string]string{"SLUICE_SOCKET_BUFFER_POOL_BYTES": "0"}, want: 0},
		{name: "negative", args: []string{"--socket-buffer-pool-bytes", "-1"}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.env, tc.args...)
			if tc.bad {
				if err == nil {
					t.Fatal("a negative socket.buffer.pool.bytes was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Wire.BufferPoolBytes != tc.want {
				t.Errorf("socket.buffer.pool.bytes = %d, want %d", cfg.Wire.BufferPoolBytes, tc.want)
			}
		})
	}
}

func TestAdvertisedAddress(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		want     string
		explicit bool
	}{
		{[]string{"--listen", "0.0.0.0:19092"}, "127.0.0.1:19092", false},
		{[]string{"--listen", ":19093"}, "127.0.0.1:19093", false},
		{[]string{"--listen", "[::]:19094"}, "127.0.0.1:19094", false},
		{[]string{"--listen", "10.1.2.3:9092"}, "10.1.2.3:9092", false},
		{[]string{"--listen", "0.0.0.0:9092", "--advertised-address", "kafka.example.com:19092"}, "kafka.example.com:19092", true},
	} {
		cfg, err := load(t, nil, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := cfg.Replication.AdvertisedHost + ":" + itoa(int64(cfg.Replication.AdvertisedPort))
		if got != tc.want || cfg.AdvertisedExplicit != tc.explicit {
			t.Errorf("%v: advertised %s (explicit %v), want %s (%v)", tc.args, got, cfg.AdvertisedExplicit, tc.want, tc.explicit)
		}
	}
}

func TestRollHours(t *testing.T) {
	cfg, err := load(t, nil, "--log-roll-hours", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Replication.Partition.Log.SegmentAge; got != 2*time.Hour {
		t.Errorf("log.roll.hours=2 gives %s", got)
	}
	cfg, err = load(t, map[string]string{"SLUICE_LOG_ROLL_MS": "60000"}, "--log-roll-hours", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Replication.Partition.Log.SegmentAge; got != time.Minute {
		t.Errorf("log.roll.ms=60000 with log.roll.hours=2 gives %s, want 1m (ms wins)", got)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // substrings of the error
	}{
		{"flush mode", nil, []string{"--log-flush-mode", "often"}, []string{"log.flush.mode", "SLUICE_LOG_FLUSH_MODE", "--log-flush-mode"}},
		{"env not a number", map[string]string{"SLUICE_MESSAGE_MAX_BYTES": "1MB"}, nil, []string{"message.max.bytes", "not an integer"}},
		{"negative node", nil, []string{"--node-id", "-1"}, []string{"node.id", "out of range"}},
		{"partitions too big", nil, []string{"--num-partitions", "4294967296"}, []string{"num.partitions"}},
		{"bad bool", map[string]string{"SLUICE_AUTO_CREATE_TOPICS_ENABLE": "perhaps"}, nil, []string{"auto.create.topics.enable"}},
		{"log format", nil, []string{"--log-format", "xml"}, []string{"log.format"}},
		{"log level", nil, []string{"--log-level", "loud"}, []string{"log.level"}},
		{"listen", nil, []string{"--listen", "9092"}, []string{"listen"}},
		{"admin listen", map[string]string{"SLUICE_ADMIN_LISTEN": "9644"}, nil, []string{"admin.listen", "SLUICE_ADMIN_LISTEN", "--admin-listen"}},
		{"admin pprof", nil, []string{"--admin-pprof-enable=maybe"}, []string{"admin-pprof-enable"}},
		{"all at once", nil, []string{"--log-format", "xml", "--log-level", "loud"}, []string{"log.format", "log.level"}},
		{"unknown file key", nil, []string{"--config", writeConfig(t, "data.dirr: x\n")}, []string{"data.dirr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestAdminConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		listen  string
		enabled bool
		pprof   bool
	}{
		{"flag", nil, []string{"--admin-listen", "0.0.0.0:19644", "--admin-pprof-enable"}, "0.0.0.0:19644", true, true},
		{"env", map[string]string{"SLUICE_ADMIN_LISTEN": "127.0.0.1:0", "SLUICE_ADMIN_PPROF_ENABLE": "true"}, nil, "127.0.0.1:0", true, true},
		{"empty turns it off", nil, []string{"--admin-listen", ""}, "", false, false},
		{"file", nil, []string{"--config", writeConfig(t, "admin:\n  listen: \"\"\n  pprof.enable: true\n")}, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Admin.Listen != tc.listen || cfg.Admin.Enabled() != tc.enabled || cfg.Admin.Pprof != tc.pprof {
				t.Errorf("admin config %+v (enabled %v), want listen %q enabled %v pprof %v", cfg.Admin, cfg.Admin.Enabled(), tc.listen, tc.enabled, tc.pprof)
			}
		})
	}
}

func TestEveryKeyHasEnvAndFlag(t *testing.T) {
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(flags)
	for _, s := range settings {
		if flags.Lookup(flagName(s.key)) == nil {
			t.Errorf("%s has no flag --%s", s.key, flagName(s.key))
		}
		if want := "SLUICE_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(s.key)); envName(s.key) != want {
			t.Errorf("%s: env %s, want %s", s.key, envName(s.key), want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRaftConfig(t *testing.T) {
	cfg, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RaftListen != "" || cfg.Replication.RaftAddress != "" || len(cfg.Replication.InitialMembers) != 0 {
		t.Fatalf("defaults: raft.listen %q, address %q, members %v; want a single node", cfg.RaftListen, cfg.Replication.RaftAddress, cfg.Replication.InitialMembers)
	}
	if m := cfg.Replication.Meta; m.HeartbeatTimeout != time.Second || m.ElectionTimeout != time.Second || m.LeaderLeaseTimeout != 500*time.Millisecond {
		t.Fatalf("default Raft timeouts %+v", m)
	}

	cfg, err = load(t, map[string]string{"SLUICE_CLUSTER_INITIAL_MEMBERS": "1@10.0.0.1:9093, 2@10.0.0.2:9093/b2:9092"},
		"--node-id", "1", "--raft-listen", "0.0.0.0:9093", "--raft-election-timeout-ms", "1500", "--raft-dial-addresses", "10.0.0.2:9093=127.0.0.1:19093")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Replication.InitialMembers
	if len(ms) != 2 || ms[0].ID != 1 || ms[0].RaftAddress != "10.0.0.1:9093" || ms[1].Host != "b2" || ms[1].Port != 9092 {
		t.Fatalf("members %+v", ms)
	}
	if cfg.RaftDial["10.0.0.2:9093"] != "127.0.0.1:19093" || len(cfg.RaftDial) != 1 {
		t.Fatalf("dial addresses %v", cfg.RaftDial)
	}
	if cfg.Replication.RaftAddress != "127.0.0.1:9093" || cfg.Replication.Meta.ElectionTimeout != 1500*time.Millisecond {
		t.Fatalf("raft address %q (want the listen port on 127.0.0.1), election timeout %s", cfg.Replication.RaftAddress, cfg.Replication.Meta.ElectionTimeout)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"members without listener", []string{"--cluster-initial-members", "1@a:1,2@b:1/b:2"}, "raft.listen"},
		{"malformed member", []string{"--raft-listen", "127.0.0.1:0", "--cluster-initial-members", "one@a:1"}, "cluster.initial.members"},
		{"advertised without listener", []string{"--raft-advertised-address", "a:1"}, "raft.advertised.address"},
		{"malformed dial address", []string{"--raft-dial-addresses", "a:1-b:2"}, "raft.dial.addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, nil, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
