package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch responses are written around their record bytes, not copied into
// one growing buffer: kmsg encodes the response with a 16-byte marker in
// place of each large record set; the marker is found in the encoding, its
// length prefix rewritten with the real length, and the frame goes out as
// one vectored write (writev) of the encoded pieces and the record sets,
// which stay where the log read put them:
//
//	encoded by kmsg, markers in place of records
//	┌──────┬─────────────┬──────┬───────┬─────────────┬──────┬───────┐
//	│ size │ header, ... │ len0 │ mark0 │ ..., part 1 │ len1 │ mark1 │ ...
//	└──────┴─────────────┴──────┴───────┴─────────────┴──────┴───────┘
//	written: [size … len0'] [records0] [… len1'] [records1] [… end]
//
// The length prefix is an int32 before Fetch v12 and an unsigned varint of
// length+1 (compact bytes) from v12; either fits in the marker's space, so
// it is rewritten in place. kmsg stays the encoder of every field; only
// the record bytes bypass it.
//
// The marker is random per process and never leaves it, so no client can
// put it in a topic name or record; should it ever be found where a record
// set's length prefix does not precede it, the response is encoded the
// plain way instead.

// minVectoredRecords is the smallest record set written from where it
// lies; smaller ones are cheaper to copy into the encoded response.
const minVectoredRecords = 4 << 10

// markerSize is the length of recordsMarker.
const markerSize = 16

// recordsMarker stands in for a record set while kmsg encodes a response.
var recordsMarker = func() (m [markerSize]byte) {
	rand.Read(m[:]) // never fails (crypto/rand)
	return m
}()

// writeFetch writes a fetch response frame, its large record sets by
// vectored write.
func (c *conn) writeFetch(in *inflight, resp *kmsg.FetchResponse) error {
	buf := c.s.buffers.get(1 << minBufferClass)
	held := holdRecords(c.held[:0], resp)
	buf = appendResponseHeader(buf[:0], in.header.correlationID, in.flexibleHeader)
	buf = resp.AppendTo(buf)
	restoreRecords(resp, held)
	pieces, ok := splitAtMarkers(c.pieces[:0], buf, held, resp.IsFlexible())
	if !ok {
		buf = appendResponseHeader(buf[:0], in.header.correlationID, in.flexibleHeader)
		buf = resp.AppendTo(buf)
		finishFrame(buf)
		pieces = append(pieces[:0], buf)
	}
	var err error
	if len(pieces) == 1 {
		_, err = c.nc.Write(pieces[0])
	} else {
		w := pieces // WriteTo consumes its receiver; keep pieces' array
		_, err = w.WriteTo(c.nc)
	}
	clear(pieces) // do not pin record bytes until the next response
	clear(held)
	c.pieces, c.held = pieces[:0], held[:0]
	c.s.buffers.put(buf)
	return err
}

// holdRecords replaces every record set of at least minVectoredRecords
// bytes in resp by the marker and appends it to held, in encoding order.
func holdRecords(held [][]byte, resp *kmsg.FetchResponse) [][]byte {
	for t := range resp.Topics {
		parts := resp.Topics[t].Partitions
		for p := range parts {
			if len(parts[p].RecordBatches) >= minVectoredRecords {
				held = append(held, parts[p].RecordBatches)
				parts[p].RecordBatches = recordsMarker[:]
			}
		}
	}
	return held
}

// restoreRecords undoes holdRecords.
func restoreRecords(resp *kmsg.FetchResponse, held [][]byte) {
	k := 0
	for t := range resp.Topics {
		parts := resp.Topics[t].Partitions
		for p := range parts {
			if r := parts[p].RecordBatches; len(r) == markerSize && &r[0] == &recordsMarker[0] {
				parts[p].RecordBatches = held[k]
				k++
			}
		}
	}
}

// splitAtMarkers turns frame, a response frame encoded with the marker in
// place of each of held's record sets, into the pieces to write: it finds
// each marker in turn, rewrites the length prefix before it, and sets the
// frame size. ok is false, and frame must be encoded again the plain way,
// when a marker is not where it should be.
func splitAtMarkers(pieces net.Buffers, frame []byte, held [][]byte, flexible bool) (_ net.Buffers, ok bool) {
	if len(held) == 0 {
		finishFrame(frame)
		return append(pieces, frame), true
	}
	start, total := 0, 0
	for _, records := range held {
		i := bytes.Index(frame[start:], recordsMarker[:])
		if i < 0 {
			return pieces, false
		}
		at := start + i
		// The prefix kmsg wrote for the marker's length, and where the
		// real one goes.
		var prefix int
		if flexible {
			prefix = at - 1
			if prefix < start || frame[prefix] != markerSize+1 {
				return pieces, false
			}
		} else {
			prefix = at - 4
			if prefix < start || binary.BigEndian.Uint32(frame[prefix:]) != markerSize {
				return pieces, false
			}
		}
		// The new prefix (at most 5 bytes) overwrites the marker, which
		// is not sent.
		var n int
		if flexible {
			n = binary.PutUvarint(frame[prefix:], uint64(len(records))+1)
		} else {
			binary.BigEndian.PutUint32(frame[prefix:], uint32(len(records)))
			n = 4
		}
		pieces = append(pieces, frame[start:prefix+n], records)
		total += prefix + n - start + len(records)
		start = at + markerSize
	}
	pieces = append(pieces, frame[start:])
	total += len(frame) - start
	binary.BigEndian.PutUint32(frame, uint32(total-4))
	return pieces, true
}
