package test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition/record"
)

// rawConn speaks the Kafka protocol over one TCP connection with requests
// framed by hand (kmsg encodes the bodies), so tests choose exact versions
// and can send broken frames.
type rawConn struct {
	tb            testing.TB
	conn          net.Conn
	formatter     *kmsg.RequestFormatter
	correlationID int32
}

// dialRaw connects to addr; t.Cleanup closes the connection.
func dialRaw(tb testing.TB, addr string) *rawConn {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawConn{tb: tb, conn: conn, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-e2e-raw"))}
}

// roundTrip sends req at the version set on it and decodes the response.
func (c *rawConn) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	c.correlationID++
	frame := c.formatter.AppendRequest(nil, req, c.correlationID)
	if err := c.conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		return nil, err
	}
	if _, err := c.conn.Write(frame); err != nil {
		return nil, fmt.Errorf("write %s v%d: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body, err := c.readFrame()
	if err != nil {
		return nil, fmt.Errorf("read %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("%s v%d response of %d bytes has no correlation id", kmsg.NameForKey(req.Key()), req.GetVersion(), len(body))
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != c.correlationID {
		return nil, fmt.Errorf("%s v%d response correlation id %d, want %d", kmsg.NameForKey(req.Key()), req.GetVersion(), got, c.correlationID)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	// ApiVersions responses keep header v0 even when flexible (KIP-511).
	if resp.IsFlexible() && req.Key() != (&kmsg.ApiVersionsRequest{}).Key() {
		if body, err = skipTaggedFields(body); err != nil {
			return nil, fmt.Errorf("%s v%d response header: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// mustRoundTrip is roundTrip failing the test on error.
func (c *rawConn) mustRoundTrip(req kmsg.Request) kmsg.Response {
	c.tb.Helper()
	resp, err := c.roundTrip(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	return resp
}

func (c *rawConn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > 256<<20 {
		return nil, fmt.Errorf("response size %d out of range", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(c.conn, body)
	return body, err
}

// writeBytes writes b as is, for malformed frames.
func (c *rawConn) writeBytes(b []byte) error {
	if err := c.conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		return err
	}
	_, err := c.conn.Write(b)
	return err
}

// waitClosed reports whether the server closes the connection (read returns
// EOF or a reset) within testTimeout, reading and discarding anything sent
// before.
func (c *rawConn) waitClosed() error {
	if err := c.conn.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, c.conn)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("connection still open after %s", testTimeout)
	}
	return nil // EOF (nil from io.Copy) or reset: closed
}

// skipTaggedFields skips a flexible header's tagged fields.
func skipTaggedFields(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[n:]
	for range count {
		_, n := binary.Uvarint(b) // tag
		if n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// apiVersions asks the server which versions it supports, with ApiVersions
// v0 (which every broker answers).
func apiVersions(tb testing.TB, addr string) map[int16]kmsg.ApiVersionsResponseApiKey {
	tb.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(0)
	resp := dialRaw(tb, addr).mustRoundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		tb.Fatalf("ApiVersions v0 error code %d", resp.ErrorCode)
	}
	keys := make(map[int16]kmsg.ApiVersionsResponseApiKey, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		keys[k.ApiKey] = k
	}
	return keys
}

// batchRecord is one record of a hand-built batch.
type batchRecord struct {
	Key, Value []byte
	Headers    []record.Header
}

// makeBatch encodes an uncompressed, non-idempotent v2 record batch with
// base offset 0, timestamps firstTimestamp+i and a correct CRC-32C.
func makeBatch(firstTimestamp int64, records ...batchRecord) []byte {
	var b record.Builder
	for i, r := range records {
		b.Add(firstTimestamp+int64(i), r.Key, r.Value, r.Headers...)
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		panic(err) // uncompressed: fails only without records, a test's bug
	}
	return batch
}

// makeMessageSet encodes one uncompressed message of the legacy format
// (magic 0 without a timestamp, magic 1 with one) at offset 0, as clients
// older than Kafka 0.11 produce with Produce v0-2.
func makeMessageSet(magic int8, timestamp int64, key, value []byte) []byte {
	var m []byte
	if magic == 0 {
		msg := kmsg.MessageV0{Magic: 0, Key: key, Value: value}
		m = msg.AppendTo(nil)
	} else {
		msg := kmsg.MessageV1{Magic: 1, Timestamp: timestamp, Key: key, Value: value}
		m = msg.AppendTo(nil)
	}
	// offset(8) size(4) crc(4) magic...: fill size and the CRC-32 (IEEE)
	// of everything after the crc.
	binary.BigEndian.PutUint32(m[8:], uint32(len(m)-12))
	binary.BigEndian.PutUint32(m[12:], crc32.ChecksumIEEE(m[16:]))
	return m
}

// firstMessage decodes the offset, magic and value of the first legacy
// message of a message set (Fetch v0-3).
func firstMessage(set []byte) (offset int64, magic int8, value []byte, err error) {
	if len(set) < 17 {
		return 0, 0, nil, fmt.Errorf("message set of %d bytes", len(set))
	}
	switch magic = int8(set[16]); magic {
	case 0:
		var m kmsg.MessageV0
		err = m.ReadFrom(set)
		return m.Offset, magic, m.Value, err
	case 1:
		var m kmsg.MessageV1
		err = m.ReadFrom(set)
		return m.Offset, magic, m.Value, err
	default:
		return 0, magic, nil, fmt.Errorf("message set starts with magic %d", magic)
	}
}
