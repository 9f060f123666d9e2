package share

import (
	"bytes"
	"testing"

	"github.com/sluice-io/sluice/partition/record"
)

func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte{0})
	f.Add(record.AppendHeaders(nil, []record.Header{{Key: "a", Value: []byte("b")}, {Key: "n"}}))
	f.Add([]byte{2, 2, 'a', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := decodeHeaders(b)
		if err != nil {
			return
		}
		if len(b) == 0 {
			if hs != nil {
				t.Fatalf("headers %v from nothing", hs)
			}
			return
		}
		// Whatever decodes encodes back to the same bytes (canonical
		// varints) or to bytes that decode to the same headers.
		again, err := decodeHeaders(record.AppendHeaders(nil, hs))
		if err != nil || len(again) != len(hs) {
			t.Fatalf("re-decode of %v: %v, %v", hs, again, err)
		}
		for i := range hs {
			if hs[i].Key != again[i].Key || !bytes.Equal(hs[i].Value, again[i].Value) || (hs[i].Value == nil) != (again[i].Value == nil) {
				t.Fatalf("header %d: %+v then %+v", i, hs[i], again[i])
			}
		}
	})
}
