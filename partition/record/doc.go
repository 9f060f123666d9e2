// Package record is the codec of the records inside a v2 record batch: it
// encodes and decodes records, compresses and decompresses a batch's
// records section with the five codecs Kafka defines, and builds complete
// batches (header and CRC-32C included, through package log). It is the
// one place in Sluice that looks inside a batch; partition (compaction,
// timestamp lookups, produce validation), consumergroup (its records in
// __consumer_offsets) and wire (message-set conversion) all use it.
//
// It does not own the batch header: package log does (log.BatchHeader,
// log.ParseBatchHeader, log.VerifyBatch, log.AppendBatch), and this package
// builds on it. It holds no state except the shared, pooled compressors
// and the zstd decoder, and every function is safe for concurrent use;
// a Builder or an Iter belongs to one goroutine.
//
// # Formats
//
// A batch is a log.BatchHeader (log/batch.go has its layout) followed by
// its records section: the records back to back (record.go has the record
// layout), compressed as a whole when the header's attributes name a
// codec (compress.go):
//
//	+-----------------+-----------------------------------------------+
//	| header 61 bytes | records section                               |
//	|                 | codec 0: record | record | ...                |
//	|                 | codec 1-4: compress(record | record | ...)    |
//	+-----------------+-----------------------------------------------+
//
// # Glossary
//
//   - records section: the bytes after the 61-byte header, as stored.
//   - offset delta, timestamp delta: a record's offset and timestamp
//     relative to the batch's base offset and base timestamp.
//   - limit: the most bytes a records section may expand to when
//     decompressed (MaxDecompressedBytes unless a caller says less).
//
// # Non-obvious
//
//   - Producers' batches are bounded compressed (max.message.bytes), not
//     expanded: every decompression takes a limit, or a few kilobytes of
//     zeros would make the broker allocate gigabytes.
//   - A batch whose CRC is valid can still hold a payload that does not
//     decompress or records that do not decode (a poison batch): the CRC
//     only proves the bytes are what the producer sent. CheckProduced
//     decodes everything a consumer will, so the leader refuses such a
//     batch (CORRUPT_MESSAGE) instead of storing it for every consumer to
//     fail on.
//   - Snappy comes raw (franz-go, librdkafka) or xerial-framed (the Java
//     client's snappy-java); Decompress takes both, Compress writes raw.
//   - Compacted batches keep their offsets, so their records' offset
//     deltas have gaps and their record count may be below
//     lastOffsetDelta+1; only produced batches must be dense.
package record
