package log

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden output of script tests in testdata/script")

// TestScript runs the recovery scripts in testdata/script. Each block is a
// command line, "----", and the expected output up to a blank line; run
// with -rewrite to regenerate the expected output, then review the diff.
//
// Commands:
//
//	open [segment-bytes=N] [interval=N]  open the log on the current FS
//	append n=N [records=N] [value=N]     append n batches
//	sync | close                         Log.Sync, Log.Close
//	kill                                 forget the Log (kill -9)
//	powercut [torn=N]                    replace the FS by its crash clone,
//	                                     keeping N unsynced bytes per file
//	damage file=F op=O [n=N]             F: a file name, or newest.log, newest.index,
//	                                     newest.timeindex, first.log ...; O: garbage
//	                                     (append N bytes), cut (drop last N bytes),
//	                                     flip (xor byte N from the end), remove
//	truncate to=N                        Log.TruncateTo
//	read offset=N max-bytes=N            list the batches Read returns
//	ls                                   files and sizes
func TestScript(t *testing.T) {
	files, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

type scriptBlock struct {
	command string
	output  string
}

func parseScript(t *testing.T, file string) (blocks []scriptBlock, comments map[int][]string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	comments = map[int][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "#") {
				comments[len(blocks)] = append(comments[len(blocks)], line)
			}
			continue
		}
		b := scriptBlock{command: line}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s: command %q not followed by ----", file, line)
		}
		var out []string
		for sc.Scan() && sc.Text() != "" {
			out = append(out, sc.Text())
		}
		b.output = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks, comments
}

type scriptEnv struct {
	t    *testing.T
	fs   *MemFS
	log  *Log
	logs *observer.ObservedLogs
	core zapcore.Core
	cfg  Config
}

const scriptDir = "/data/topic-0"

func runScript(t *testing.T, file string) {
	blocks, comments := parseScript(t, file)
	core, logs := observer.New(zapcore.WarnLevel)
	env := &scriptEnv{t: t, fs: NewMemFS(), logs: logs, core: core}
	var rewritten strings.Builder
	for i, b := range blocks {
		for _, c := range comments[i] {
			rewritten.WriteString(c + "\n")
		}
		got := strings.TrimRight(env.run(b.command), "\n")
		if *rewrite {
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", b.command, got)
		} else if got != b.output {
			t.Fatalf("%s: %s\ngot:\n%s\nwant:\n%s", file, b.command, got, b.output)
		}
	}
	for _, c := range comments[len(blocks)] {
		rewritten.WriteString(c + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if env.log != nil {
		env.log.Close()
	}
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
	switch fields[0] {
	case "open":
		e.cfg = Config{SegmentBytes: num("segment-bytes", 1000), SegmentAge: time.Hour, IndexIntervalBytes: int(num("interval", 200))}
		l, err := Open(scriptDir, e.cfg, Options{FS: e.fs, Logger: zap.New(e.core), FileCache: testFiles})
		if err != nil {
			return "error: " + err.Error()
		}
		e.log = l
		return e.drainLogs() + e.describe()
	case "append":
		for range num("n", 1) {
			if err := e.log.Append(simpleBatch(e.log.NextOffset(), int(num("records", 2)), int(num("value", 100)))); err != nil {
				return "error: " + err.Error()
			}
		}
		return fmt.Sprintf("next=%d segments=%d", e.log.NextOffset(), len(e.log.Segments()))
	case "sync":
		if err := e.log.Sync(); err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("synced=%d recovery-point=%d", e.log.SyncedOffset(), readRecoveryPoint(e.fs, scriptDir))
	case "close":
		err := e.log.Close()
		e.log = nil
		if err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "kill":
		e.log = nil
		return "ok"
	case "powercut":
		torn := int(num("torn", 0))
		e.fs = e.fs.CrashCloneWith(func(string, int) int { return torn })
		e.log = nil
		return "ok"
	case "damage":
		return e.damage(args["file"], args["op"], int(num("n", 0)))
	case "truncate":
		if err := e.log.TruncateTo(num("to", 0)); err != nil {
			return "error: " + err.Error()
		}
		return e.describe()
	case "read":
		out, err := e.log.Read(nil, ReadRequest{Offset: num("offset", 0), MaxOffset: e.log.NextOffset(), MaxBytes: int(num("max-bytes", 1<<20))})
		if err != nil {
			return "error: " + err.Error()
		}
		var lines []string
		err = SplitBatches(out, func(_ []byte, h BatchHeader) error {
			lines = append(lines, fmt.Sprintf("batch [%d, %d] %d bytes", h.BaseOffset, h.LastOffset(), h.Size()))
			return nil
		})
		if err != nil {
			lines = append(lines, "error: "+err.Error())
		}
		if len(lines) == 0 {
			return "no batches"
		}
		return strings.Join(lines, "\n")
	case "ls":
		names, err := e.fs.ReadDir(scriptDir)
		if err != nil {
			return "error: " + err.Error()
		}
		var lines []string
		for _, n := range names {
			f, err := e.fs.OpenFile(filepath.Join(scriptDir, n), false)
			if err != nil {
				continue
			}
			size, _ := f.Size()
			f.Close()
			lines = append(lines, fmt.Sprintf("%s %d", n, size))
		}
		return strings.Join(lines, "\n")
	}
	e.t.Fatalf("unknown command %q", command)
	return ""
}

// describe prints the log's offsets and segments.
func (e *scriptEnv) describe() string {
	l := e.log
	var b strings.Builder
	fmt.Fprintf(&b, "start=%d next=%d synced=%d recovery-point=%d\n", l.StartOffset(), l.NextOffset(), l.SyncedOffset(), readRecoveryPoint(e.fs, scriptDir))
	s := l.state.Load()
	for i := range s.count() {
		v := s.view(i)
		fmt.Fprintf(&b, "segment %d: [%d, %d) %d bytes, %d index entries, max timestamp %d\n", v.base, v.base, v.next, v.size, len(v.index), max(v.maxTimestamp, -1))
	}
	return b.String()
}

// drainLogs prints the warnings and errors logged since the last call.
func (e *scriptEnv) drainLogs() string {
	var b strings.Builder
	for _, entry := range e.logs.TakeAll() {
		fmt.Fprintf(&b, "%s: %s", entry.Level.CapitalString(), entry.Message)
		for _, f := range entry.Context {
			if f.Key == "dir" || f.Key == "error" {
				continue
			}
			if f.Type == zapcore.StringType {
				fmt.Fprintf(&b, " %s=%s", f.Key, f.String)
			} else {
				fmt.Fprintf(&b, " %s=%d", f.Key, f.Integer)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (e *scriptEnv) damage(file, op string, n int) string {
	path := filepath.Join(scriptDir, file)
	if which, suffix, ok := strings.Cut(file, "."); ok && (which == "newest" || which == "first") {
		names, _ := e.fs.ReadDir(scriptDir)
		var matches []string
		for _, name := range names {
			if strings.HasSuffix(name, "."+suffix) {
				matches = append(matches, name)
			}
		}
		if len(matches) == 0 {
			return "no " + file
		}
		slices.Sort(matches)
		path = filepath.Join(scriptDir, matches[0])
		if which == "newest" {
			path = filepath.Join(scriptDir, matches[len(matches)-1])
		}
	}
	if op == "remove" {
		if err := e.fs.Remove(path); err != nil {
			return "error: " + err.Error()
		}
		return "removed " + filepath.Base(path)
	}
	f, err := e.fs.OpenFile(path, true)
	if err != nil {
		return "error: " + err.Error()
	}
	defer f.Close()
	data, _ := readAll(f)
	if len(data) < n && op != "garbage" {
		return fmt.Sprintf("%s has only %d bytes", filepath.Base(path), len(data))
	}
	switch op {
	case "garbage":
		for i := range n {
			data = append(data, byte(i*7+3))
		}
	case "cut":
		data = data[:max(0, len(data)-n)]
	case "flip":
		data[len(data)-n] ^= 0x10
	default:
		e.t.Fatalf("unknown damage op %q", op)
	}
	f.Truncate(0)
	f.WriteAt(data, 0)
	return fmt.Sprintf("%s now %d bytes", filepath.Base(path), len(data))
}
