package raftlog

import (
	"testing"

	"github.com/sluice-io/sluice/log"
)

func TestStableSurvivesPowerCut(t *testing.T) {
	fs := log.NewMemFS()
	if err := fs.MkdirAll("/p"); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStable("/p", fs)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 0 {
		t.Fatalf("unset term = %d, %v; want 0, nil", v, err)
	}
	if _, err := s.Get([]byte("LastVoteCand")); err == nil || err.Error() != "not found" {
		t.Fatalf("unset key: %v, want not found", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	after, err := OpenStable("/p", fs.CrashClone())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := after.GetUint64([]byte("CurrentTerm")); v != 7 {
		t.Fatalf("term after power cut %d, want 7", v)
	}
	if v, _ := after.Get([]byte("LastVoteCand")); string(v) != "node-2" {
		t.Fatalf("vote after power cut %q, want node-2", v)
	}
}
