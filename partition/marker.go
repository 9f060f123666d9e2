package partition

import (
	"encoding/binary"
	"fmt"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// Transaction marker: a control batch (attributes bits 4 and 5 set:
// transactional and control) of the producer whose transaction it ends,
// base sequence -1, holding one record, Kafka's EndTransactionMarker. All
// integers are big-endian.
//
//	record key                     record value
//	offset size field              offset size field
//	     0    2 version (0)             0    2 version (0)
//	     2    2 type                    2    4 coordinatorEpoch
//	              0 ABORT, 1 COMMIT
//
// A newer version may append fields; they are ignored, as Kafka ignores
// them. Other control types (Kafka has none a broker writes besides these)
// are not markers and end no transaction.
const (
	markerKeyLen     = 4
	markerValueLen   = 6
	markerAbort      = 0
	markerCommit     = 1
	markerAttributes = 0x30 // transactional | control
)

// errNotMarker is what decodeMarker returns for a control record that is
// not an end-transaction marker.
var errNotMarker = fmt.Errorf("%w: control record is not a transaction marker", log.ErrCorrupt)

// decodeMarkerRecord decodes the key and value of a control record as an
// end-transaction marker. It never panics on any input; errors wrap
// log.ErrCorrupt (errNotMarker for another control type).
func decodeMarkerRecord(key, value []byte) (commit bool, coordinatorEpoch int32, err error) {
	if len(key) < markerKeyLen {
		return false, 0, fmt.Errorf("%w: control record key of %d bytes", log.ErrCorrupt, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return false, 0, fmt.Errorf("%w: control record key version %d", log.ErrCorrupt, v)
	}
	switch binary.BigEndian.Uint16(key[2:]) {
	case markerAbort:
	case markerCommit:
		commit = true
	default:
		return false, 0, errNotMarker
	}
	if len(value) < markerValueLen {
		return false, 0, fmt.Errorf("%w: transaction marker value of %d bytes", log.ErrCorrupt, len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 {
		return false, 0, fmt.Errorf("%w: transaction marker value version %d", log.ErrCorrupt, v)
	}
	return commit, int32(binary.BigEndian.Uint32(value[2:])), nil
}

// decodeMarker reads the marker of control batch b (a whole batch, header
// h). ok is false for a control batch that holds no end-transaction marker
// (an unknown control type): it ends no transaction. Errors wrap
// log.ErrCorrupt.
func decodeMarker(b []byte, h *log.BatchHeader) (m TxnMarker, ok bool, err error) {
	_, it, err := record.Records(b, MaxDecompressedBytes)
	if err != nil {
		return TxnMarker{}, false, err
	}
	if !it.Next() {
		if err := it.Err(); err != nil {
			return TxnMarker{}, false, err
		}
		// An empty control batch (a cleaner's leftover) ends nothing.
		return TxnMarker{}, false, nil
	}
	rec := it.Record()
	commit, coordinatorEpoch, err := decodeMarkerRecord(rec.Key, rec.Value)
	switch {
	case err == errNotMarker:
		return TxnMarker{}, false, nil
	case err != nil:
		return TxnMarker{}, false, err
	}
	return TxnMarker{
		ProducerID:       h.ProducerID,
		ProducerEpoch:    h.ProducerEpoch,
		Commit:           commit,
		CoordinatorEpoch: coordinatorEpoch,
	}, true, nil
}

// appendMarkerBatch appends to dst the control batch of marker m, stamped
// with timestamp (milliseconds): base offset 0 and leader epoch -1 until
// Apply stamps them.
func appendMarkerBatch(dst []byte, m TxnMarker, timestamp int64) []byte {
	key := make([]byte, 0, markerKeyLen)
	key = binary.BigEndian.AppendUint16(key, 0)
	kind := uint16(markerAbort)
	if m.Commit {
		kind = markerCommit
	}
	key = binary.BigEndian.AppendUint16(key, kind)
	value := make([]byte, 0, markerValueLen)
	value = binary.BigEndian.AppendUint16(value, 0)
	value = binary.BigEndian.AppendUint32(value, uint32(m.CoordinatorEpoch))
	section := record.AppendRecord(nil, &record.Record{Key: key, Value: value})
	h := log.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           markerAttributes,
		BaseTimestamp:        timestamp,
		MaxTimestamp:         timestamp,
		ProducerID:           m.ProducerID,
		ProducerEpoch:        m.ProducerEpoch,
		BaseSequence:         -1,
		RecordCount:          1,
	}
	return log.AppendBatch(dst, h, section)
}
