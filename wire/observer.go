package wire

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
)

// Observer is told what the server does, for metrics: cmd/sluice/admin
// implements it with Prometheus counters and histograms, so that wire
// imports no metrics library. Every method is called on a connection's
// goroutines while requests are answered: implementations must be safe
// for concurrent use and must not block.
type Observer interface {
	// RequestDone is called once per request handled: key is its API key,
	// took the time from the decoded request to the response being ready
	// (waits for acks and for fetch data included, writing excluded).
	// errorCodes are every non-zero error code the response carries, top
	// level and per topic, partition or group, one entry per occurrence;
	// the slice is reused after the call.
	RequestDone(key int16, took time.Duration, errorCodes []int16)
	// Produced is called for each partition of a Produce request whose
	// append succeeded (retried duplicates excluded): bytes of record
	// batches as stored, and records (offsets) appended to topic.
	Produced(topic string, bytes, records int64)
	// Fetched is called for each partition of a Fetch response that
	// carries records: bytes of record batches (or down-converted message
	// sets) sent, and the records of the v2 batches among them. A batch
	// that begins before the fetch offset counts whole, as it is sent.
	Fetched(topic string, bytes, records int64)
}

// observe wraps a dispatch table handler so that, when the server has an
// Observer, the request's latency and error codes are reported once its
// response is ready, and Fetch responses' bytes and records per topic. It
// is the one place in the dispatch that sees every request.
func observe(key int16, h handler) handler {
	return func(s *Server, ctx context.Context, req kmsg.Request) reply {
		if s.observer == nil {
			return h(s, ctx, req)
		}
		began := time.Now()
		r := h(s, ctx, req)
		if r.finish == nil {
			s.requestDone(key, began, r.resp)
			return r
		}
		finish := r.finish
		r.finish = func(ctx context.Context) kmsg.Response {
			resp := finish(ctx)
			s.requestDone(key, began, resp)
			return resp
		}
		return r
	}
}

// requestDone reports a request whose response (nil when none is sent) is
// ready.
func (s *Server) requestDone(key int16, began time.Time, resp kmsg.Response) {
	took := time.Since(began)
	var codes []int16
	if resp != nil {
		codes = errorCodes(resp, nil)
		if fr, ok := resp.(*kmsg.FetchResponse); ok {
			s.observeFetched(fr)
		}
	}
	s.observer.RequestDone(key, took, codes)
}

// observeFetched reports the records a Fetch response carries, per topic.
func (s *Server) observeFetched(resp *kmsg.FetchResponse) {
	for _, t := range resp.Topics {
		name := t.Topic
		if name == "" { // v13+: topics by id
			topic, ok := s.cluster.TopicByID(t.TopicID)
			if !ok {
				continue
			}
			name = topic.Name()
		}
		var bytes, records int64
		for _, p := range t.Partitions {
			bytes += int64(len(p.RecordBatches))
			records += countBatchRecords(p.RecordBatches)
		}
		if bytes > 0 {
			s.observer.Fetched(name, bytes, records)
		}
	}
}

// countBatchRecords returns the record count of the v2 batches in b, read
// from their headers; message sets (magic 0 and 1) and a truncated tail
// count nothing.
func countBatchRecords(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			return n
		}
		if !h.Control() {
			n += int64(h.RecordCount)
		}
		b = b[h.Size():]
	}
	return n
}

// errorCodes appends to dst every non-zero int16 field named ErrorCode in
// resp, at any depth (top level, topics, partitions, groups, members).
// The walk per response type is built once by reflection and cached.
func errorCodes(resp kmsg.Response, dst []int16) []int16 {
	v := reflect.ValueOf(resp)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return dst
	}
	v = v.Elem()
	w := walkerFor(v.Type())
	if w == nil {
		return dst
	}
	return w(v, dst)
}

// codeWalker appends the non-zero error codes found in v.
type codeWalker func(v reflect.Value, dst []int16) []int16

// walkers caches a codeWalker (nil when the type holds no error code) per
// reflect.Type.
var walkers sync.Map

func walkerFor(t reflect.Type) codeWalker {
	if w, ok := walkers.Load(t); ok {
		return w.(codeWalker)
	}
	w := buildWalker(t, 0)
	walkers.Store(t, w)
	return w
}

// maxWalkDepth bounds the recursion over nested types: kmsg nests at most
// four levels (response, topic, partition, record errors).
const maxWalkDepth = 8

func buildWalker(t reflect.Type, depth int) codeWalker {
	if depth > maxWalkDepth {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := buildWalker(t.Elem(), depth+1)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value, dst []int16) []int16 {
			if v.IsNil() {
				return dst
			}
			return elem(v.Elem(), dst)
		}
	case reflect.Slice:
		elem := buildWalker(t.Elem(), depth+1)
		if elem == nil {
			return nil
		}
		return func(v reflect.Value, dst []int16) []int16 {
			for i := range v.Len() {
				dst = elem(v.Index(i), dst)
			}
			return dst
		}
	case reflect.Struct:
		type field struct {
			index int
			code  bool
			walk  codeWalker
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				fields = append(fields, field{index: i, code: true})
				continue
			}
			if w := buildWalker(f.Type, depth+1); w != nil {
				fields = append(fields, field{index: i, walk: w})
			}
		}
		if len(fields) == 0 {
			return nil
		}
		return func(v reflect.Value, dst []int16) []int16 {
			for _, f := range fields {
				fv := v.Field(f.index)
				if f.code {
					if c := int16(fv.Int()); c != 0 {
						dst = append(dst, c)
					}
					continue
				}
				dst = f.walk(fv, dst)
			}
			return dst
		}
	}
	return nil
}
