package meta

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files of TestScripts")

// TestScripts runs the command scripts in testdata/script/*.txt through
// State.Apply and compares a readable trace (each command, its result,
// the state after it) with the .golden file beside the script. Run with
// -rewrite to regenerate the golden files, then review the diff.
//
// A script line is "<op> <args as JSON>" (the args of the command
// encoding); blank lines and lines starting with # are skipped.
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob("testdata/script/*.txt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, path := range scripts {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScript(t, path)
			golden := strings.TrimSuffix(path, ".txt") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("trace differs from %s (run with -rewrite and review the diff):\n%s", golden, got)
			}
		})
	}
}

func runScript(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	s := Empty()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		op, args, _ := strings.Cut(text, " ")
		if args == "" {
			args = "{}"
		}
		cmd, err := Decode([]byte(fmt.Sprintf(`{"v":1,"op":%q,"args":%s}`, op, args)))
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		var res Result
		s, res = s.Apply(s.Version+1, cmd)
		fmt.Fprintf(&out, "> %s\n", text)
		switch {
		case res.Err != nil:
			fmt.Fprintf(&out, "error: %v\n", res.Err)
		case res.ProducerIDs.Size > 0:
			fmt.Fprintf(&out, "ok: producer ids [%d, %d) for node %d\n", res.ProducerIDs.First, res.ProducerIDs.First+res.ProducerIDs.Size, res.ProducerIDs.NodeID)
		default:
			out.WriteString("ok\n")
		}
		if res.Err == nil {
			describe(&out, s)
		}
		out.WriteString("\n")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// describe writes s in a stable, readable form.
func describe(out *bytes.Buffer, s *State) {
	fmt.Fprintf(out, "  version %d, cluster %q, next producer id %d\n", s.Version, s.ClusterID, s.NextProducerID)
	for _, id := range s.NodeIDs(false) {
		n := s.Nodes[id]
		fmt.Fprintf(out, "  node %d %s:%d raft %s rack %q %s\n", n.ID, n.Host, n.Port, n.RaftAddress, n.Rack, n.State)
	}
	for _, name := range s.TopicNames() {
		tp := s.Topics[name]
		fmt.Fprintf(out, "  topic %s id %s internal %v configs %s\n", name, tp.ID, tp.Internal, configsString(tp.Configs))
		for i, p := range tp.Partitions {
			fmt.Fprintf(out, "    %s-%d %v", name, i, p.Replicas)
			if p.Reassigning() {
				fmt.Fprintf(out, " adding %v removing %v", p.Adding, p.Removing)
			}
			if p.Moved {
				fmt.Fprint(out, " moved")
			}
			fmt.Fprintln(out)
		}
	}
	if len(s.Brokers.Default) > 0 {
		fmt.Fprintf(out, "  broker configs default %s\n", configsString(s.Brokers.Default))
	}
	var ids []int32
	for id := range s.Brokers.Nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		fmt.Fprintf(out, "  broker configs node %d %s\n", id, configsString(s.Brokers.Nodes[id]))
	}
}

func configsString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%s", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}
