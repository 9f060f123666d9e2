package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/hashicorp/raft"
)

var rewriteSeeds = flag.Bool("rewrite", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// encodeFrame returns the whole encoded frame (length field included).
func encodeFrame(t testing.TB, typ byte, id uint64, build func(*encoder) error) []byte {
	t.Helper()
	var e encoder
	e.begin(typ, id)
	if err := build(&e); err != nil {
		t.Fatalf("encode: %v", err)
	}
	bufs, size, err := e.finish(64 << 20)
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	var out bytes.Buffer
	if _, err := bufs.WriteTo(&out); err != nil || out.Len() != size {
		t.Fatalf("write frame: %v (%d of %d bytes)", err, out.Len(), size)
	}
	return out.Bytes()
}

// requestFrames returns an encoded request frame of every sample request.
func requestFrames(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, req := range sampleRequests() {
		out[name] = encodeFrame(t, requestType(req), 7, func(e *encoder) error {
			e.str("group-1")
			return encodeRequest(e, req)
		})[4:]
	}
	out["ping"] = encodeFrame(t, typePing, 8, func(e *encoder) error {
		e.str("")
		return encodeRequest(e, &pingRequest{})
	})[4:]
	out["read-log"] = encodeFrame(t, typeReadLog, 10, func(e *encoder) error {
		e.str("group-1")
		return encodeRequest(e, &readLogRequest{Asker: "10.0.0.1:9093", From: 1 << 40, MaxBytes: 1 << 20})
	})[4:]
	return out
}

// responseFrames returns an encoded response frame of every sample
// response, one of them carrying an error.
func responseFrames(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, req := range sampleRequests() {
		typ := requestType(req)
		out[name] = encodeFrame(t, typ|responseBit, 7, func(e *encoder) error {
			e.str("")
			return encodeResponse(e, typ, sampleResponse(req))
		})[4:]
	}
	out["ping"] = encodeFrame(t, typePing|responseBit, 8, func(e *encoder) error {
		e.str("")
		return encodeResponse(e, typePing, &pingResponse{})
	})[4:]
	out["read-log"] = encodeFrame(t, typeReadLog|responseBit, 10, func(e *encoder) error {
		e.str("")
		return encodeResponse(e, typeReadLog, &readLogResponse{Chunk: LogChunk{LogStart: 3, End: 1 << 40, Batches: bytes.Repeat([]byte{7}, 300)}})
	})[4:]
	out["error"] = encodeFrame(t, typeRequestVote|responseBit, 9, func(e *encoder) error {
		e.str("transport: group busy")
		return encodeResponse(e, typeRequestVote, nil)
	})[4:]
	return out
}

// TestFrameLength checks that the length field counts every byte after it
// and that frames over the limit are refused before they are written.
func TestFrameLength(t *testing.T) {
	for name, b := range requestFrames(t) {
		if name == "ping" || name == "read-log" {
			continue
		}
		full := encodeFrame(t, b[0], 7, func(e *encoder) error {
			e.str("group-1")
			return encodeRequest(e, sampleRequests()[name])
		})
		if got := binary.BigEndian.Uint32(full); int(got) != len(full)-4 {
			t.Errorf("%s: length field %d, frame has %d bytes after it", name, got, len(full)-4)
		}
	}
	var e encoder
	e.begin(typeAppendEntries, 1)
	e.str("g")
	encodeRequest(&e, &raft.AppendEntriesRequest{Entries: []*raft.Log{{Data: make([]byte, 8192)}}})
	if _, _, err := e.finish(4096); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("finish of an 8 KiB frame with a 4 KiB limit: %v, want ErrFrameTooLarge", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 1, 0, 0}), 4096); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("readFrame of a 64 KiB length with a 4 KiB limit: %v, want ErrFrameTooLarge", err)
	}
}

// TestPreface checks the preface and the refusal of other versions.
func TestPreface(t *testing.T) {
	if err := checkPreface(preface()); err != nil {
		t.Fatalf("own preface: %v", err)
	}
	for name, p := range map[string][]byte{
		"other version": {'S', 'L', 'R', 'T', 2, 0, 0, 0},
		"other magic":   {'H', 'T', 'T', 'P', 1, 0, 0, 0},
		"short":         {'S', 'L'},
	} {
		if err := checkPreface(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// TestWriteFuzzSeeds writes the seed corpus of the fuzz targets; run with
// -rewrite after changing the format.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*rewriteSeeds {
		t.Skip("run with -rewrite to regenerate testdata/fuzz")
	}
	write := func(target string, frames map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range frames {
			file := filepath.Join(dir, "seed-"+strings.ReplaceAll(name, " ", "-"))
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecodeRequest", requestFrames(t))
	write("FuzzDecodeResponse", responseFrames(t))
}

// FuzzDecodeRequest feeds arbitrary frames (the bytes after the length
// field) to the request decoder. It must not panic; a frame it accepts
// must re-encode to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	for _, b := range requestFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v is not ErrMalformed", err)
			}
			return
		}
		group, req, err := decodeRequestFrame(fr)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v is not ErrMalformed", err)
			}
			return
		}
		again := encodeFrame(t, fr.typ, fr.id, func(e *encoder) error {
			e.str(group)
			return encodeRequest(e, req)
		})[4:]
		// Encodings are canonical except for uvarints with redundant
		// continuation bytes; decode again and compare values instead.
		fr2, err := parseFrame(again)
		if err != nil {
			t.Fatalf("re-encoded frame does not parse: %v", err)
		}
		group2, req2, err := decodeRequestFrame(fr2)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if group2 != group || !reflect.DeepEqual(req2, req) {
			t.Fatalf("round trip changed the request:\n%#v\n%#v", req, req2)
		}
		if len(again) > len(b) {
			t.Fatalf("re-encoding grew the frame from %d to %d bytes", len(b), len(again))
		}
	})
}

// FuzzDecodeResponse feeds arbitrary frames to the response decoder of
// every request type. It must not panic; a frame it accepts must
// re-encode to a frame that decodes to the same response.
func FuzzDecodeResponse(f *testing.F) {
	for _, b := range responseFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			return
		}
		typ := fr.typ &^ responseBit
		resp := newResponse(typ)
		if resp == nil {
			resp = &raft.AppendEntriesResponse{}
		}
		remoteErr, err := decodeResponseFrame(fr, resp)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error %v is not ErrMalformed", err)
			}
			return
		}
		again := encodeFrame(t, fr.typ, fr.id, func(e *encoder) error {
			e.str(remoteErr)
			return encodeResponse(e, typ, resp)
		})[4:]
		resp2 := newResponse(typ)
		remoteErr2, err := decodeResponseFrame(frame{typ: again[0], id: fr.id, payload: again[9:]}, resp2)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v", err)
		}
		if remoteErr2 != remoteErr || !reflect.DeepEqual(resp2, resp) {
			t.Fatalf("round trip changed the response:\n%#v\n%#v", resp, resp2)
		}
	})
}

// newResponse returns an empty raft response for a request type.
func newResponse(typ byte) any {
	switch typ {
	case typeAppendEntries:
		return &raft.AppendEntriesResponse{}
	case typeRequestVote:
		return &raft.RequestVoteResponse{}
	case typeRequestPreVote:
		return &raft.RequestPreVoteResponse{}
	case typeInstallSnapshot:
		return &raft.InstallSnapshotResponse{}
	case typeTimeoutNow:
		return &raft.TimeoutNowResponse{}
	case typePing:
		return &pingResponse{}
	case typeReadLog:
		return &readLogResponse{}
	}
	return nil
}

// TestEntryDataNotCopied checks the hot path's copies: on the send side
// entry Data over inlineDataMax is one of the frame's buffers, not a copy;
// on the receive side decoded Data aliases the frame it was read into.
func TestEntryDataNotCopied(t *testing.T) {
	data := bytes.Repeat([]byte{7}, inlineDataMax+1)
	req := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1, Data: data}, {Index: 2, Data: []byte("small")}}}
	var e encoder
	e.begin(typeAppendEntries, 1)
	e.str("g")
	if err := encodeRequest(&e, req); err != nil {
		t.Fatal(err)
	}
	bufs, _, err := e.finish(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var referenced bool
	for _, b := range bufs {
		referenced = referenced || (len(b) == len(data) && &b[0] == &data[0])
	}
	if !referenced {
		t.Errorf("large entry Data was copied into the frame instead of referenced")
	}
	var wire bytes.Buffer
	bufs.WriteTo(&wire)
	frameBytes, err := readFrame(&wire, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := parseFrame(frameBytes)
	_, got, err := decodeRequestFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got.(*raft.AppendEntriesRequest).Entries {
		start := &frameBytes[0]
		end := &frameBytes[len(frameBytes)-1]
		p := &l.Data[0]
		if uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(start)) || uintptr(unsafe.Pointer(p)) > uintptr(unsafe.Pointer(end)) {
			t.Errorf("decoded Data of entry %d does not alias the frame", l.Index)
		}
		if cap(l.Data) != len(l.Data) {
			t.Errorf("decoded Data of entry %d has spare capacity %d: an append would overwrite the frame", l.Index, cap(l.Data)-len(l.Data))
		}
	}
}
