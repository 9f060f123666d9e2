package wire

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
)

func TestErrorCodes(t *testing.T) {
	produce := kmsg.NewPtrProduceResponse()
	for _, codes := range [][]int16{{0, kerr.NotLeaderForPartition.Code}, {kerr.UnknownTopicOrPartition.Code}} {
		rt := kmsg.NewProduceResponseTopic()
		for _, c := range codes {
			p := kmsg.NewProduceResponseTopicPartition()
			p.ErrorCode = c
			rt.Partitions = append(rt.Partitions, p)
		}
		produce.Topics = append(produce.Topics, rt)
	}
	top := kmsg.NewPtrFindCoordinatorResponse()
	top.ErrorCode = kerr.CoordinatorNotAvailable.Code
	tests := []struct {
		name string
		resp kmsg.Response
		want []int16
	}{
		{"nested partitions", produce, []int16{kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code}},
		{"top level", top, []int16{kerr.CoordinatorNotAvailable.Code}},
		{"no errors", kmsg.NewPtrApiVersionsResponse(), nil},
		{"no error field", kmsg.NewPtrMetadataResponse(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCodes(tt.resp, nil); !slices.Equal(got, tt.want) {
				t.Fatalf("errorCodes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCountBatchRecords(t *testing.T) {
	var b []byte
	for i, n := range []int32{3, 5} {
		b = log.AppendBatch(b, log.BatchHeader{BaseOffset: int64(8 * i), LastOffsetDelta: n - 1, RecordCount: n, ProducerID: -1}, make([]byte, 10))
	}
	if got := countBatchRecords(b); got != 8 {
		t.Fatalf("countBatchRecords = %d, want 8", got)
	}
	if got := countBatchRecords(b[:len(b)-1]); got != 3 {
		t.Fatalf("countBatchRecords of a truncated tail = %d, want 3 (the whole first batch)", got)
	}
}

// recordingObserver keeps what it is told.
type recordingObserver struct {
	mu    sync.Mutex
	keys  []int16
	codes [][]int16
}

func (o *recordingObserver) RequestDone(key int16, _ time.Duration, codes []int16) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.keys = append(o.keys, key)
	o.codes = append(o.codes, slices.Clone(codes))
}
func (o *recordingObserver) Produced(string, int64, int64) {}
func (o *recordingObserver) Fetched(string, int64, int64)  {}

func TestObserveReportsWhenResponseReady(t *testing.T) {
	obs := &recordingObserver{}
	s := &Server{observer: obs}
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.ErrorCode = kerr.NotCoordinator.Code
	deferred := observe(10, func(*Server, context.Context, kmsg.Request) reply {
		return reply{finish: func(context.Context) kmsg.Response { return resp }}
	})
	r := deferred(s, context.Background(), kmsg.NewPtrFindCoordinatorRequest())
	if len(obs.keys) != 0 {
		t.Fatalf("reported before the deferred response was ready: %v", obs.keys)
	}
	r.finish(context.Background())
	none := observe(0, func(*Server, context.Context, kmsg.Request) reply { return reply{none: true} })
	none(s, context.Background(), kmsg.NewPtrProduceRequest())
	if !slices.Equal(obs.keys, []int16{10, 0}) || !slices.Equal(obs.codes[0], []int16{kerr.NotCoordinator.Code}) || len(obs.codes[1]) != 0 {
		t.Fatalf("observed keys %v codes %v, want [10 0] with NOT_COORDINATOR then nothing", obs.keys, obs.codes)
	}
}
