package share

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/replication/configs"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden output of script tests in testdata/script")

// TestScript runs the share-partition scripts in testdata/script. Each
// block is a command line, "----", and the expected output up to a blank
// line; run with -rewrite to regenerate the expected output, then review
// the diff. The manager runs on node 1 over a fake clock, an in-memory
// persister and dead-letter writer, and one fake data partition.
//
// Commands:
//
//	config [lock=D] [limit=N] [reset=R] [dlq=T] [copy=true] [locks=N]
//	                                  (re)create the manager: group config, max record locks
//	produce n=N                       append a batch of N records
//	acquire member=M [max=N] [strict] Acquire; prints the acquired runs (or
//	                                  that the full lock window holds M's records)
//	ack member=M first=F last=L type=accept|release|reject|gap|renew
//	release member=M                  ReleaseMember (session closed)
//	advance d=D                       move the clock
//	failover                          the partition's leader epoch moves; a
//	                                  new manager (the new leader) takes over
//	reset epoch=N start=N             an admin re-initializes the stored state
//	state                             the in-memory and the stored state
//	deadletters                       the dead letters written so far
func TestScript(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := &scriptEnv{t: t}
	var rewritten strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "#") {
				rewritten.WriteString(line + "\n")
			}
			continue
		}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s: command %q not followed by ----", file, line)
		}
		var want []string
		for sc.Scan() && sc.Text() != "" {
			want = append(want, sc.Text())
		}
		got := strings.TrimRight(env.run(line), "\n")
		if *rewrite {
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", line, got)
		} else if got != strings.Join(want, "\n") {
			t.Fatalf("%s: %s\ngot:\n%s\nwant:\n%s", file, line, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type scriptEnv struct {
	t        *testing.T
	tm       *testManager
	cfg      configs.ShareGroup
	maxLocks int
}

func (e *scriptEnv) run(command string) string {
	fields := strings.Fields(command)
	args := map[string]string{}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	num := func(k string, def int64) int64 {
		v, ok := args[k]
		if !ok {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			e.t.Fatalf("%s: bad %s=%q", command, k, v)
		}
		return n
	}
	dur := func(k string, def time.Duration) time.Duration {
		v, ok := args[k]
		if !ok {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			e.t.Fatalf("%s: bad %s=%q", command, k, v)
		}
		return d
	}
	if fields[0] != "config" && e.tm == nil {
		e.t.Fatalf("%s before config", command)
	}
	ctx := context.Background()
	switch fields[0] {
	case "config":
		e.cfg = configs.DefaultShareGroup()
		e.cfg.RecordLockDuration = dur("lock", 10*time.Second)
		e.cfg.DeliveryCountLimit = int(num("limit", 5))
		if r, ok := args["reset"]; ok {
			e.cfg.AutoOffsetReset = r
		}
		e.cfg.DeadLetterTopic = args["dlq"]
		e.cfg.DeadLetterCopyRecord = args["copy"] == "true"
		e.maxLocks = int(num("locks", 2000))
		old := e.tm
		e.tm = newTestManager(e.t, e.cfg)
		e.tm.Manager.cfg.MaxRecordLocks = e.maxLocks
		if old != nil {
			// Keep the data and the coordinator's state.
			e.tm.data, e.tm.persister, e.tm.target.Data = old.data, old.persister, old.data
			e.tm.Manager.persister = old.persister
		}
		return "ok"
	case "produce":
		e.tm.data.produce(e.t, int(num("n", 1)))
		return fmt.Sprintf("high watermark %d", e.tm.data.Offsets().HighWatermark)
	case "acquire":
		_, strict := args["strict"]
		a, err := e.tm.Acquire(ctx, "g", args["member"], e.tm.target, AcquireRequest{MaxRecords: int(num("max", 500)), MaxBytes: 1 << 20, Strict: strict})
		if err != nil {
			return "error: " + err.Error()
		}
		if len(a.Ranges) == 0 && a.HoldsLocks {
			return "nothing; the lock window is full and holds the member's records"
		}
		if len(a.Ranges) == 0 {
			return "nothing"
		}
		var out []string
		for _, r := range a.Ranges {
			out = append(out, fmt.Sprintf("%d-%d delivery %d", r.First, r.Last, r.DeliveryCount))
		}
		return strings.Join(out, "\n")
	case "ack":
		types := map[string]AckType{"gap": AckGap, "accept": AckAccept, "release": AckRelease, "reject": AckReject, "renew": AckRenew}
		typ, ok := types[args["type"]]
		if !ok {
			e.t.Fatalf("%s: bad type", command)
		}
		err := e.tm.Acknowledge(ctx, "g", args["member"], e.tm.target, []AckBatch{{First: num("first", 0), Last: num("last", 0), Types: []AckType{typ}}}, true)
		if err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "release":
		if err := e.tm.ReleaseMember(ctx, "g", args["member"], e.tm.target); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "advance":
		e.tm.clock.advance(dur("d", 0))
		return "ok"
	case "failover":
		e.tm.data.mu.Lock()
		e.tm.data.epoch++
		epoch := e.tm.data.epoch
		e.tm.data.mu.Unlock()
		// The new leader's manager: the old one's memory is gone.
		next := NewManager(DefaultConfig(), 1, e.tm.persister, groupConfigs{e.cfg}, Options{DeadLetters: e.tm.dead, Now: e.tm.clock.Now})
		next.cfg.MaxRecordLocks = e.maxLocks
		e.t.Cleanup(next.Close)
		e.tm.Manager.Close()
		e.tm.Manager = next
		return fmt.Sprintf("leader epoch %d", epoch)
	case "reset":
		if err := e.tm.persister.Initialize(ctx, e.tm.key(), int32(num("epoch", 1)), num("start", 0)); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "state":
		return e.state()
	case "deadletters":
		e.tm.dead.mu.Lock()
		defer e.tm.dead.mu.Unlock()
		if len(e.tm.dead.letters) == 0 {
			return "none"
		}
		var out []string
		for _, l := range e.tm.dead.letters {
			h := headerMap(l)
			out = append(out, fmt.Sprintf("%s offset %s delivery %s key %q value %q: %s", e.tm.dead.topic, h[HeaderOffset], h[HeaderDeliveryCount], l.Key, l.Value, h[HeaderMessage]))
		}
		return strings.Join(out, "\n")
	}
	e.t.Fatalf("unknown command %q", command)
	return ""
}

// state describes the share-partition in memory (runs of records in one
// state) and as stored.
func (e *scriptEnv) state() string {
	var b strings.Builder
	m := e.tm.Manager
	m.mu.Lock()
	sp := m.partitions[e.tm.key()]
	m.mu.Unlock()
	if sp == nil {
		b.WriteString("memory: none\n")
	} else {
		sp.mu.Lock()
		p := &sp.state
		fmt.Fprintf(&b, "memory: start %d end %d acquired %d\n", p.start, p.end(), p.acquired)
		names := map[recordState]string{stateAvailable: "available", stateAcquired: "acquired", stateAcknowledged: "acknowledged", stateArchived: "archived"}
		for i := 0; i < len(p.records); {
			r := p.records[i]
			j := i
			for j+1 < len(p.records) && p.records[j+1].state == r.state && p.records[j+1].deliveries == r.deliveries && p.records[j+1].member == r.member && p.records[j+1].deadline.Equal(r.deadline) {
				j++
			}
			fmt.Fprintf(&b, "  %d-%d %s delivery %d", p.start+int64(i), p.start+int64(j), names[r.state], r.deliveries)
			if r.state == stateAcquired {
				fmt.Fprintf(&b, " by %s until +%s", r.member, r.deadline.Sub(e.tm.clock.Now()))
			}
			b.WriteString("\n")
			i = j + 1
		}
		sp.mu.Unlock()
	}
	st := e.tm.persister.State(e.tm.key())
	fmt.Fprintf(&b, "stored: state epoch %d leader epoch %d start %d\n", st.StateEpoch, st.LeaderEpoch, st.StartOffset)
	for _, bt := range st.Batches {
		fmt.Fprintf(&b, "  %d-%d state %d delivery %d\n", bt.First, bt.Last, bt.State, bt.DeliveryCount)
	}
	return b.String()
}
