package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Request frame (request header v1, v2 for flexible versions):
//
//	size           int32   bytes that follow
//	api key        int16
//	api version    int16
//	correlation id int32
//	client id      int16 length + bytes (nullable, -1 for null)
//	tagged fields  uvarint count, then (uvarint tag, uvarint size, bytes)…
//	               (header v2 only)
//	body           the request, as kmsg reads it
//
// Response frame (response header v0, v1 for flexible versions; ApiVersions
// always uses v0 so a client can parse it before it knows our versions):
//
//	size           int32
//	correlation id int32
//	tagged fields  one 0 byte: no tags  (header v1 only)
//	body

var (
	// errFrameTooLarge reports a size prefix above MaxRequestBytes.
	errFrameTooLarge = errors.New("wire: request frame above socket.request.max.bytes")
	// errMalformedHeader reports a request header that does not parse.
	errMalformedHeader = errors.New("wire: malformed request header")
)

// API keys the frame and response code treats specially.
const (
	produceKey int16 = 0
	fetchKey   int16 = 1
)

// requestHeader is a decoded request header.
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      *string
}

// keepsFrame reports whether requests of an API may be decoded in place in
// a pooled frame, which goes back to the pool once the response is
// written. kmsg decodes byte fields as slices of the frame, so only APIs
// whose handlers keep none of them past the response may: Produce (the
// log copies the batches in Append) and Fetch. Other APIs' frames are
// copied out of the pool first, since, for one, the group coordinator
// keeps JoinGroup metadata and SyncGroup assignments.
func keepsFrame(key int16) bool {
	return key == produceKey || key == fetchKey
}

// parseHeader decodes the fixed part of the request header and returns the
// rest of the frame. Tagged fields are skipped only when flexible says the
// header is v2; the caller decides that from key and version, so it parses
// the fixed part first with flexible false and calls skipTags after.
func parseHeader(frame []byte) (requestHeader, []byte, error) {
	if len(frame) < 10 {
		return requestHeader{}, nil, fmt.Errorf("%w: %d bytes", errMalformedHeader, len(frame))
	}
	h := requestHeader{
		key:           int16(binary.BigEndian.Uint16(frame[0:])),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n >= 0 {
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes, %d left", errMalformedHeader, n, len(rest))
		}
		id := string(rest[:n])
		h.clientID = &id
		rest = rest[n:]
	} else if n != -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", errMalformedHeader, n)
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section and returns what follows.
func skipTags(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad tag count", errMalformedHeader)
	}
	b = b[n:]
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag", errMalformedHeader)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad tag size", errMalformedHeader)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// appendResponseHeader starts a response frame in dst with a size
// placeholder; finishFrame fills the size in.
func appendResponseHeader(dst []byte, correlationID int32, flexibleHeader bool) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexibleHeader {
		dst = append(dst, 0)
	}
	return dst
}

// finishFrame writes the size prefix of a frame started at dst[0].
func finishFrame(frame []byte) {
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
}
