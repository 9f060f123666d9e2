package share

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestSessions(t *testing.T) {
	s := NewSessions(1)
	k := SessionKey{Group: "g", Member: "m"}
	a, b := TopicPartition{Partition: 0}, TopicPartition{Partition: 1}
	steps := []struct {
		name    string
		do      func() ([]TopicPartition, error)
		want    []TopicPartition
		wantErr error
	}{
		{"increment before open", func() ([]TopicPartition, error) { p, _, err := s.Fetch(k, nil, 1, nil, nil); return p, err }, nil, kerr.ShareSessionNotFound},
		{"open", func() ([]TopicPartition, error) {
			p, _, err := s.Fetch(k, nil, 0, []TopicPartition{a}, nil)
			return p, err
		}, []TopicPartition{a}, nil},
		{"limit", func() ([]TopicPartition, error) {
			p, _, err := s.Fetch(SessionKey{Group: "g", Member: "other"}, nil, 0, nil, nil)
			return p, err
		}, nil, kerr.ShareSessionLimitReached},
		{"wrong epoch", func() ([]TopicPartition, error) { p, _, err := s.Fetch(k, nil, 2, nil, nil); return p, err }, nil, kerr.InvalidShareSessionEpoch},
		{"add", func() ([]TopicPartition, error) {
			p, _, err := s.Fetch(k, nil, 1, []TopicPartition{b}, nil)
			return p, err
		}, []TopicPartition{a, b}, nil},
		{"forget", func() ([]TopicPartition, error) {
			p, _, err := s.Fetch(k, nil, 2, nil, []TopicPartition{a})
			return p, err
		}, []TopicPartition{b}, nil},
		{"ack epoch", func() ([]TopicPartition, error) { return nil, s.Acknowledge(k, 3) }, nil, nil},
		{"ack stale epoch", func() ([]TopicPartition, error) { return nil, s.Acknowledge(k, 3) }, nil, kerr.InvalidShareSessionEpoch},
		{"ack epoch 0", func() ([]TopicPartition, error) { return nil, s.Acknowledge(k, 0) }, nil, kerr.InvalidShareSessionEpoch},
		{"close", func() ([]TopicPartition, error) { return s.Close(k) }, []TopicPartition{b}, nil},
		{"close again", func() ([]TopicPartition, error) { return s.Close(k) }, nil, kerr.ShareSessionNotFound},
	}
	for _, st := range steps {
		got, err := st.do()
		if !errors.Is(err, st.wantErr) && !(err == nil && st.wantErr == nil) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
		if st.wantErr == nil && !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s: partitions %v, want %v", st.name, got, st.want)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("%d sessions left", s.Len())
	}
}

func TestSessionReopenReturnsReplaced(t *testing.T) {
	s := NewSessions(10)
	k := SessionKey{Group: "g", Member: "m"}
	a := TopicPartition{Partition: 7}
	if _, _, err := s.Fetch(k, nil, 0, []TopicPartition{a}, nil); err != nil {
		t.Fatal(err)
	}
	_, replaced, err := s.Fetch(k, nil, 0, nil, nil)
	if err != nil || !reflect.DeepEqual(replaced, []TopicPartition{a}) {
		t.Fatalf("reopen: replaced %v, %v", replaced, err)
	}
}

func TestSessionCloseOwned(t *testing.T) {
	s := NewSessions(10)
	k := SessionKey{Group: "g", Member: "m"}
	a := TopicPartition{Partition: 1}
	first, second := new(int), new(int)
	if _, _, err := s.Fetch(k, first, 0, []TopicPartition{a}, nil); err != nil {
		t.Fatal(err)
	}
	// The member reopens on another connection: the first one closing
	// leaves the new session alone.
	if _, _, err := s.Fetch(k, second, 0, []TopicPartition{a}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.CloseOwned(k, first); ok {
		t.Fatal("closed by an owner that no longer holds it")
	}
	if parts, ok := s.CloseOwned(k, second); !ok || !reflect.DeepEqual(parts, []TopicPartition{a}) {
		t.Fatalf("close by its owner: %v %v", parts, ok)
	}
}
