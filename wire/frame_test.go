package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameFor encodes req with a request header, as a client would.
func frameFor(req kmsg.Request, correlationID int32, clientID *string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestReadFrame(t *testing.T) {
	sizeOf := func(n int32, body int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(n))
		return append(b, make([]byte, body)...)
	}
	tests := []struct {
		name    string
		in      []byte
		max     int32
		wantErr error
		wantLen int
	}{
		{name: "ok", in: sizeOf(16, 16), max: 1024, wantLen: 16},
		{name: "at limit", in: sizeOf(1024, 1024), max: 1024, wantLen: 1024},
		{name: "over limit is refused before reading the body", in: sizeOf(1025, 0), max: 1024, wantErr: errFrameTooLarge},
		{name: "negative size", in: sizeOf(-5, 0), max: 1024, wantErr: errFrameTooLarge},
		{name: "too small for a header", in: sizeOf(3, 3), max: 1024, wantErr: errFrameTooLarge},
		{name: "huge size", in: sizeOf(1<<31-1, 0), max: 100 << 20, wantErr: errFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := &frameReader{r: bytes.NewReader(tt.in), max: tt.max, pool: newBufferPool(0)}
			frame, _, err := fr.next(context.Background())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(frame) != tt.wantLen {
				t.Fatalf("frame of %d bytes, want %d", len(frame), tt.wantLen)
			}
		})
	}
}

func TestParseHeaderRoundTrip(t *testing.T) {
	id := "client-1"
	for _, a := range apis {
		for _, v := range []int16{a.minVersion, a.maxVersion} {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			for _, clientID := range []*string{nil, &id} {
				frame := frameFor(req, 42, clientID)
				h, rest, err := parseHeader(frame)
				if err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(a.key), v, err)
				}
				if h.key != a.key || h.version != v || h.correlationID != 42 || (clientID == nil) != (h.clientID == nil) {
					t.Fatalf("%s v%d: header %+v", kmsg.NameForKey(a.key), v, h)
				}
				if req.IsFlexible() {
					if rest, err = skipTags(rest); err != nil {
						t.Fatalf("%s v%d: tags: %v", kmsg.NameForKey(a.key), v, err)
					}
				}
				got := kmsg.RequestForKey(a.key)
				got.SetVersion(v)
				if err := got.ReadFrom(rest); err != nil {
					t.Fatalf("%s v%d: body: %v", kmsg.NameForKey(a.key), v, err)
				}
			}
		}
	}
}

// FuzzDecodeRequest feeds arbitrary frames through header parsing and
// request decoding, as the connection reader does. Invariants: no panic;
// a decoded header's fields come from the frame's first bytes; the rest is
// a suffix of the frame.
func FuzzDecodeRequest(f *testing.F) {
	id := "fuzz"
	for _, a := range apis {
		for _, v := range []int16{a.minVersion, a.maxVersion} {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			f.Add(frameFor(req, 7, &id))
		}
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 255, 255})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, rest, err := parseHeader(frame)
		if err != nil {
			return
		}
		if h.key != int16(binary.BigEndian.Uint16(frame)) || h.correlationID != int32(binary.BigEndian.Uint32(frame[4:])) {
			t.Fatalf("header %+v does not match frame", h)
		}
		if !bytes.HasSuffix(frame, rest) {
			t.Fatal("rest is not a suffix of the frame")
		}
		a := lookupAPI(h.key)
		if a == nil || h.version < a.minVersion || h.version > a.maxVersion {
			return
		}
		req := kmsg.RequestForKey(h.key)
		req.SetVersion(h.version)
		if req.IsFlexible() {
			if rest, err = skipTags(rest); err != nil {
				return
			}
		}
		_ = req.ReadFrom(rest)
	})
}
