package wire

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchResponseFor builds a response with a mix of empty, small and large
// record sets over two topics, filled with random bytes.
func fetchResponseFor(version int16, rng *rand.Rand, sizes []int) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	resp.SessionID = 7
	for ti, name := range []string{"alpha", "beta"} {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = name
		rt.TopicID[0] = byte(ti + 1)
		for pi, size := range sizes {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = int32(pi)
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 100, 100, 0
			rp.RecordBatches = make([]byte, size)
			for i := range rp.RecordBatches {
				rp.RecordBatches[i] = byte(rng.Uint32())
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// vectoredFrame runs writeFetch's encoding and returns the bytes it would
// write.
func vectoredFrame(t *testing.T, resp *kmsg.FetchResponse, correlationID int32, flexibleHeader bool) []byte {
	t.Helper()
	held := holdRecords(nil, resp)
	buf := appendResponseHeader(nil, correlationID, flexibleHeader)
	buf = resp.AppendTo(buf)
	restoreRecords(resp, held)
	pieces, ok := splitAtMarkers(nil, buf, held, resp.IsFlexible())
	if !ok {
		t.Fatal("markers not found")
	}
	var out bytes.Buffer
	if _, err := (&pieces).WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestVectoredFetchMatchesKmsg checks that writing a fetch response around
// its record sets gives the very bytes kmsg gives, at every version served, for
// record sets around the vectoring threshold and past each varint width.
func TestVectoredFetchMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := [][]int{
		nil,
		{0},
		{minVectoredRecords - 1},
		{minVectoredRecords},
		{0, minVectoredRecords, 10, 1 << 14, 0},
		{1<<14 - 2, 1 << 14, 1<<21 + 3}, // uvarint of 2, 3 and 4 bytes
	}
	served := lookupAPI(fetchKey)
	for version := served.minVersion; version <= served.maxVersion; version++ {
		for i, sz := range sizes {
			t.Run(fmt.Sprintf("v%d/%d", version, i), func(t *testing.T) {
				resp := fetchResponseFor(version, rng, sz)
				flexibleHeader := resp.IsFlexible()
				want := appendResponseHeader(nil, 99, flexibleHeader)
				want = resp.AppendTo(want)
				finishFrame(want)
				got := vectoredFrame(t, resp, 99, flexibleHeader)
				if !bytes.Equal(got, want) {
					t.Fatalf("vectored frame of %d bytes differs from kmsg's of %d bytes", len(got), len(want))
				}
				// And the response is left as it was.
				again := appendResponseHeader(nil, 99, flexibleHeader)
				again = resp.AppendTo(again)
				finishFrame(again)
				if !bytes.Equal(again, want) {
					t.Fatal("encoding changed the response")
				}
			})
		}
	}
}

// TestSplitAtMarkersRefusesMisplacedMarker checks the fallback: a marker
// without the length prefix it should have is not split on.
func TestSplitAtMarkersRefusesMisplacedMarker(t *testing.T) {
	frame := append([]byte{0, 0, 0, 0, 0, 0, 0, 9}, recordsMarker[:]...)
	for _, flexible := range []bool{false, true} {
		if _, ok := splitAtMarkers(nil, bytes.Clone(frame), [][]byte{make([]byte, minVectoredRecords)}, flexible); ok {
			t.Fatalf("flexible %v: split on a marker without its length prefix", flexible)
		}
	}
	if _, ok := splitAtMarkers(nil, []byte{0, 0, 0, 0, 1, 2}, [][]byte{make([]byte, minVectoredRecords)}, false); ok {
		t.Fatal("split a frame without a marker")
	}
}

// TestWriteFetchOverTCP checks the vectored write on a real socket, where
// it is a writev.
func TestWriteFetchOverTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()

	s := &Server{buffers: newBufferPool(64 << 20)}
	c := &conn{s: s, nc: server}
	resp := fetchResponseFor(12, rand.New(rand.NewPCG(3, 4)), []int{1 << 16, 5, 1 << 20})
	want := appendResponseHeader(nil, 5, true)
	want = resp.AppendTo(want)
	finishFrame(want)

	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		n, _ := io.ReadFull(client, b)
		got <- b[:n]
	}()
	if err := c.writeFetch(&inflight{header: requestHeader{correlationID: 5}, flexibleHeader: true}, resp); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes differing from the %d-byte frame kmsg encodes", len(b), len(want))
	}
}
