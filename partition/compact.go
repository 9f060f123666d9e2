package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// CleanLimits bounds one compaction's resources.
type CleanLimits struct {
	// MaxMapBytes bounds the memory of the key -> offset map; a log with
	// more distinct keys is cleaned in several passes. Corresponds to
	// log.cleaner.dedupe.buffer.size. Default 128 MiB.
	MaxMapBytes int64
	// MaxBytesPerSecond throttles the cleaner's reads and writes; zero is
	// unthrottled. Corresponds to log.cleaner.io.max.bytes.per.second.
	MaxBytesPerSecond int64
}

// defaultMaxMapBytes is CleanLimits.MaxMapBytes when zero or negative.
const defaultMaxMapBytes = 128 << 20

// mapEntryOverhead is what a map entry costs beyond its key's bytes, by
// estimate (Go map slot, string header, offset), for MaxMapBytes.
const mapEntryOverhead = 48

// CleanResult says what a compaction did.
type CleanResult struct {
	// Cleaned is false when nothing was due (policy, dirty ratio, lags).
	Cleaned                    bool
	BytesBefore, BytesAfter    int64
	RecordsRemoved             int64
	TombstonesRemoved          int64
	FirstDirtyOffsetAfterClean int64
}

// Compact cleans the log when the cleanup policy includes compact and it is
// due (dirty ratio at least MinCleanableDirtyRatio, or a record older than
// MaxCompactionLag): in the non-active segments, only the newest record per
// key is kept (records younger than MinCompactionLag stay), tombstones
// older than DeleteRetention are removed, offsets are preserved (gaps are
// fine) and batches keep their producer metadata. Appends and reads go on
// meanwhile. A crash at any point leaves a valid log. ctx cancels it.
//
// It follows Kafka's LogCleaner; doc.go has the details and deviations.
// One pass:
//
//  1. The cleanable range ends at the first uncleanable offset: the active
//     segment, the first segment holding data at or above the high
//     watermark, or the first dirty segment whose newest timestamp is
//     within MinCompactionLag. The dirty part starts at the first dirty
//     offset (the log's cleaner checkpoint, or the log start).
//  2. Due when dirty bytes / (clean + dirty bytes) of the cleanable
//     segments is above MinCleanableDirtyRatio, when the first dirty batch
//     is older than MaxCompactionLag, or when the earliest delete horizon
//     of a kept tombstone has passed.
//  3. The key -> latest offset map covers the dirty part up to where
//     MaxMapBytes fills it (end).
//  4. Every cleanable segment based below end is rewritten, in groups of
//     consecutive segments of at most SegmentBytes together: a record
//     stays when it is at or past end, or when it has a key, its offset is
//     the newest for the key, and it is not a tombstone past its batch's
//     delete horizon. Each group is swapped in (log.ReplaceSegments) under
//     the replica's lock, which is all an append ever waits for.
//  5. The first dirty offset becomes end.
//
// Cleaned is true when a pass ran, even if it removed nothing. After Close
// it returns ErrClosed; the cleaner's files are then removed or finished by
// the next Open.
func (r *Replica) Compact(ctx context.Context, now time.Time, limits CleanLimits) (CleanResult, error) {
	if r.closed.Load() {
		return CleanResult{}, ErrClosed
	}
	cfg := r.Config()
	if cfg.CleanupPolicy&CleanupCompact == 0 {
		return CleanResult{FirstDirtyOffsetAfterClean: r.log.StartOffset()}, nil
	}
	r.cleanup.cleanMu.Lock()
	defer r.cleanup.cleanMu.Unlock()
	p, err := r.planClean(&cfg, now)
	if err != nil {
		return CleanResult{}, r.cleanError(err)
	}
	res := CleanResult{FirstDirtyOffsetAfterClean: p.firstDirty}
	if p.reason == "" {
		return res, nil
	}
	began := time.Now()
	c := &cleaner{
		r:         r,
		cfg:       &cfg,
		now:       now.UnixMilli(),
		offsets:   newOffsetMap(limits.MaxMapBytes),
		producers: r.producerLastOffsets(),
		throttle:  throttle{rate: limits.MaxBytesPerSecond, start: time.Now()},
		txnKept:   make(map[int64]bool),
	}
	end, err := c.buildMap(ctx, &p)
	if err != nil {
		return res, r.cleanError(err)
	}
	var toClean []log.SegmentInfo
	for _, s := range p.segs {
		if s.BaseOffset < end {
			toClean = append(toClean, s)
		}
	}
	for _, g := range groupSegments(toClean, cfg.Log.SegmentBytes) {
		gs, err := c.cleanGroup(ctx, g, end)
		if errors.Is(err, log.ErrSegmentsChanged) {
			// Retention or DeleteRecords removed segments meanwhile: what
			// is swapped in stays, the next pass starts over.
			r.logger.Info("compaction abandoned, segments changed", zap.Int64("base-offset", g[0].BaseOffset))
			res.Cleaned = res.BytesBefore > 0
			return res, nil
		}
		if err != nil {
			return res, r.cleanError(err)
		}
		res.BytesBefore += gs.bytesBefore
		res.BytesAfter += gs.bytesAfter
		res.RecordsRemoved += gs.records
		res.TombstonesRemoved += gs.tombstones
		r.cleanup.recordsCompacted.Add(gs.records)
	}
	if err := r.log.SetCleanerCheckpoint(end, c.minHorizon); err != nil {
		return res, r.cleanError(err)
	}
	res.Cleaned = true
	res.FirstDirtyOffsetAfterClean = end
	r.cleanup.compactions.Add(1)
	r.logger.Info("compacted log", zap.String("reason", p.reason),
		zap.Int64("first-dirty-offset", p.firstDirty), zap.Int64("end-offset", end),
		zap.Int("segments", len(toClean)), zap.Int("keys", len(c.offsets.offsets)),
		zap.Int64("bytes-before", res.BytesBefore), zap.Int64("bytes-after", res.BytesAfter),
		zap.Int64("records-removed", res.RecordsRemoved), zap.Int64("tombstones-removed", res.TombstonesRemoved),
		zap.Duration("took", time.Since(began)))
	return res, nil
}

// cleanError maps a closed log to ErrClosed and wraps anything else.
func (r *Replica) cleanError(err error) error {
	switch {
	case errors.Is(err, log.ErrClosed) || errors.Is(err, ErrClosed):
		return ErrClosed
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("partition: compact %s-%d: %w", r.topic, r.partition, err)
}

// cleanPlan is what one pass may clean.
type cleanPlan struct {
	// segs are the cleanable segments, oldest first: sealed, wholly below
	// the high watermark, and (from the first dirty one on) older than
	// MinCompactionLag.
	segs []log.SegmentInfo
	// firstDirty is where the dirty part starts; firstUncleanable where
	// segs end.
	firstDirty, firstUncleanable int64
	// reason says why a pass is due; "" when none is.
	reason string
}

func (r *Replica) planClean(cfg *Config, now time.Time) (cleanPlan, error) {
	segs := r.log.Segments()
	start, next, hwm := r.log.StartOffset(), r.log.NextOffset(), r.cleanBound()
	if len(segs) == 0 {
		return cleanPlan{}, ErrClosed
	}
	firstDirty, horizon, ok := r.log.CleanerCheckpoint()
	if !ok || firstDirty < start || firstDirty > next {
		firstDirty = start
	}
	nowMs := now.UnixMilli()
	var clean, dirty int64
	i := 0
	for ; i < len(segs)-1; i++ {
		s := segs[i]
		if segs[i+1].BaseOffset > hwm {
			break
		}
		if s.NextOffset > firstDirty {
			if cfg.MinCompactionLag > 0 && s.MaxTimestamp > nowMs-cfg.MinCompactionLag.Milliseconds() {
				break
			}
			dirty += s.Size
		} else {
			clean += s.Size
		}
	}
	p := cleanPlan{segs: segs[:i], firstDirty: firstDirty, firstUncleanable: segs[i].BaseOffset}
	if dirty > 0 {
		if ratio := float64(dirty) / float64(clean+dirty); ratio > cfg.MinCleanableDirtyRatio {
			p.reason = "dirty-ratio"
		} else if cfg.MaxCompactionLag != math.MaxInt64 {
			var first int64 = -1
			err := r.log.BatchHeaders(firstDirty, func(h log.BatchHeader) bool {
				first = h.MaxTimestamp
				return false
			})
			if err != nil {
				return p, err
			}
			if first >= 0 && first < nowMs-cfg.MaxCompactionLag.Milliseconds() {
				p.reason = "max-compaction-lag"
			}
		}
	}
	if p.reason == "" && horizon > 0 && nowMs >= horizon && len(p.segs) > 0 {
		p.reason = "tombstones-expired"
	}
	return p, nil
}

// producerLastOffsets returns, per producer id, the last offset of its
// latest batch: that batch is kept (emptied if need be) so that producer
// state rebuilt from the log continues the producer's sequence.
func (r *Replica) producerLastOffsets() map[int64]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int64]int64, len(r.producers.entries))
	for id, e := range r.producers.entries {
		if e.count > 0 {
			m[id] = e.batches[e.count-1].lastOffset
		}
	}
	return m
}

// groupSegments splits consecutive segments into groups cleaned into one
// segment each: at most maxBytes of original size together (a bigger
// segment alone), offsets within what a segment can index.
func groupSegments(segs []log.SegmentInfo, maxBytes int64) [][]log.SegmentInfo {
	var groups [][]log.SegmentInfo
	for i := 0; i < len(segs); {
		j, size := i+1, segs[i].Size
		for j < len(segs) && size+segs[j].Size <= maxBytes && segs[j].NextOffset-segs[i].BaseOffset <= math.MaxUint32 {
			size += segs[j].Size
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// offsetMap maps each key of the dirty part to its newest offset, within a
// memory bound.
type offsetMap struct {
	offsets      map[string]int64
	bytes, limit int64
}

func newOffsetMap(limit int64) *offsetMap {
	if limit <= 0 {
		limit = defaultMaxMapBytes
	}
	return &offsetMap{offsets: make(map[string]int64), limit: limit}
}

// put records offset for key; false (and nothing recorded) when a new key
// would pass the bound. The first key always fits, so a pass progresses.
func (m *offsetMap) put(key []byte, offset int64) bool {
	if _, ok := m.offsets[string(key)]; !ok {
		cost := int64(len(key)) + mapEntryOverhead
		if m.bytes+cost > m.limit && len(m.offsets) > 0 {
			return false
		}
		m.bytes += cost
	}
	m.offsets[string(key)] = offset
	return true
}

// cleaner is the state of one Compact pass.
type cleaner struct {
	r         *Replica
	cfg       *Config
	now       int64 // ms
	offsets   *offsetMap
	producers map[int64]int64
	throttle  throttle
	// minHorizon is the earliest delete horizon of a kept tombstone or
	// marker, 0 for none: the next pass is due once it passes.
	minHorizon int64
	// txnKept holds the producers with a batch of their current
	// transaction kept so far in this pass: their marker must stay.
	txnKept map[int64]bool
	// removedAborts are the ABORT markers the group being cleaned removes
	// (producer id and marker offset as last): their index entries go
	// once the group is swapped in.
	removedAborts []abortedRange
	// Scratch buffers, reused across batches.
	kept       []record.Record
	records    []byte
	out        []byte
	compressed []byte
}

// buildMap fills the offset map from the dirty part of p and returns end:
// the offset up to which the map is complete.
func (c *cleaner) buildMap(ctx context.Context, p *cleanPlan) (int64, error) {
	end := max(p.firstUncleanable, p.firstDirty)
	for _, s := range p.segs {
		if s.NextOffset <= p.firstDirty {
			continue
		}
		full, stop, err := c.mapSegment(ctx, s.BaseOffset, p.firstDirty, p.firstUncleanable)
		if err != nil {
			return 0, err
		}
		if full {
			return stop, nil
		}
	}
	return end, nil
}

// mapSegment adds the keyed records in [from, to) of the segment at base
// to the map. When the map fills, full is set and stop is the offset of the
// first record left out.
func (c *cleaner) mapSegment(ctx context.Context, base, from, to int64) (full bool, stop int64, err error) {
	rd, err := c.r.log.ReadSegment(base)
	if err != nil {
		return false, 0, err
	}
	defer rd.Close()
	for {
		batch, h, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return false, 0, nil
		}
		if err != nil {
			return false, 0, err
		}
		if err := c.throttle.wait(ctx, len(batch)); err != nil {
			return false, 0, err
		}
		if h.LastOffset() < from || h.Control() || h.RecordCount == 0 {
			continue
		}
		if h.Transactional() && c.r.txns.isAborted(h.ProducerID, h.BaseOffset) {
			// Aborted records never count as a key's newest value.
			continue
		}
		if h.BaseOffset >= to {
			return false, 0, nil
		}
		_, it, err := record.Records(batch, MaxDecompressedBytes)
		if err != nil {
			return false, 0, fmt.Errorf("map batch at offset %d: %w", h.BaseOffset, err)
		}
		for it.Next() {
			rec := it.Record()
			offset := h.BaseOffset + int64(rec.OffsetDelta)
			if offset < from || offset >= to || rec.Key == nil {
				continue
			}
			if !c.offsets.put(rec.Key, offset) {
				return true, offset, nil
			}
		}
		if err := it.Err(); err != nil {
			return false, 0, fmt.Errorf("map batch at offset %d: %w", h.BaseOffset, err)
		}
	}
}

// groupStats is what cleaning one group did.
type groupStats struct {
	bytesBefore, bytesAfter int64
	records, tombstones     int64
	changed                 bool
}

// cleanGroup rewrites the segments of g into one cleaned segment and swaps
// it in. A lone segment whose batches all stay as they are is left alone.
func (c *cleaner) cleanGroup(ctx context.Context, g []log.SegmentInfo, end int64) (gs groupStats, err error) {
	cs, err := c.r.log.CreateCleanedSegment(g[0].BaseOffset)
	if err != nil {
		return gs, err
	}
	c.removedAborts = c.removedAborts[:0]
	handedOver := false
	defer func() {
		if !handedOver {
			if aerr := cs.Abort(); aerr != nil {
				err = errors.Join(err, aerr)
			}
		}
	}()
	groupEnd := g[len(g)-1].NextOffset
	bases := make([]int64, len(g))
	for i, s := range g {
		bases[i] = s.BaseOffset
		gs.bytesBefore += s.Size
		if err := c.cleanSegment(ctx, cs, s.BaseOffset, end, groupEnd, &gs); err != nil {
			return gs, err
		}
	}
	if !gs.changed && len(g) == 1 {
		return groupStats{}, nil
	}
	if err := cs.Finish(); err != nil {
		return gs, err
	}
	gs.bytesAfter = cs.Size()
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.closed.Load() {
		return gs, ErrClosed
	}
	// From here on ReplaceSegments owns the files: it aborts on its own
	// before the swap commits, and Open finishes a swap that committed.
	handedOver = true
	if err := c.r.log.ReplaceSegments(cs, bases); err != nil {
		return gs, err
	}
	// An ABORT marker gone from the log takes its index entry with it (as
	// Kafka's cleaner rewrites the transaction index): a consumer told of
	// an aborted transaction whose marker it never reads would drop the
	// producer's later transactions too. Its data went before it.
	c.r.txns.removeAborted(c.removedAborts)
	return gs, nil
}

// cleanSegment appends what stays of the segment at base to cs.
func (c *cleaner) cleanSegment(ctx context.Context, cs *log.CleanedSegment, base, end, groupEnd int64, gs *groupStats) error {
	rd, err := c.r.log.ReadSegment(base)
	if err != nil {
		return err
	}
	defer rd.Close()
	for {
		batch, h, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.throttle.wait(ctx, len(batch)); err != nil {
			return err
		}
		out, keep, err := c.cleanBatch(batch, h, end, h.NextOffset() == groupEnd, gs)
		if err != nil {
			return fmt.Errorf("clean batch at offset %d: %w", h.BaseOffset, err)
		}
		if !keep {
			continue
		}
		if err := cs.Append(out); err != nil {
			return err
		}
		if err := c.throttle.wait(ctx, len(out)); err != nil {
			return err
		}
	}
}

// cleanBatch decides what stays of one batch (header h) and returns the
// batch to write, valid until the next call; keep is false when the batch
// goes entirely. groupLast marks the last batch of a group, which always
// stays (emptied if need be) so the cleaned segment ends where the group
// ended.
func (c *cleaner) cleanBatch(batch []byte, h log.BatchHeader, end int64, groupLast bool, gs *groupStats) (out []byte, keep bool, err error) {
	if h.Control() {
		return c.cleanMarker(batch, h, groupLast, gs)
	}
	out, keep, err = c.cleanData(batch, h, end, groupLast, gs)
	if keep && h.Transactional() {
		c.txnKept[h.ProducerID] = true
	}
	return out, keep, err
}

// cleanMarker decides the fate of control batch h, as Kafka's cleaner
// (KIP-98): a marker stays while a batch of its transaction stays (before
// it, in this pass); once none does, the first clean stamps a delete
// horizon (now + DeleteRetention) into it, as for a tombstone, and a
// clean after the horizon removes it, so that a consumer that read the
// transaction's data had the time to read its marker too.
func (c *cleaner) cleanMarker(batch []byte, h log.BatchHeader, groupLast bool, gs *groupStats) (out []byte, keep bool, err error) {
	kept := c.txnKept[h.ProducerID]
	delete(c.txnKept, h.ProducerID)
	hasHorizon := h.Attributes&deleteHorizonFlag != 0
	switch {
	case h.RecordCount == 0:
		// What an earlier pass left of a removed marker as the last
		// batch of its group: it ends nothing.
		if groupLast {
			return batch, true, nil
		}
		gs.changed = true
		return nil, false, nil
	case kept:
		return batch, true, nil
	case hasHorizon && c.now >= h.BaseTimestamp:
		m, ok, err := decodeMarker(batch, &h)
		if err != nil {
			return nil, false, err
		}
		if ok && !m.Commit {
			c.removedAborts = append(c.removedAborts, abortedRange{producerID: h.ProducerID, first: -1, last: h.BaseOffset})
		}
		gs.changed = true
		gs.records += int64(h.RecordCount)
		if !groupLast {
			return nil, false, nil
		}
		// The group's last batch stays, emptied, so the cleaned
		// segment ends where the group did; empty, it ends no
		// transaction.
		empty := h
		empty.Attributes = h.Attributes &^ (0x07 | deleteHorizonFlag)
		empty.BaseTimestamp, empty.RecordCount = h.MaxTimestamp, 0
		c.out = log.AppendBatch(c.out[:0], empty, nil)
		return c.out, true, nil
	case hasHorizon:
		c.noteHorizon(h.BaseTimestamp)
		return batch, true, nil
	}
	_, it, err := record.Records(batch, MaxDecompressedBytes)
	if err != nil {
		return nil, false, err
	}
	stamped := h
	stamped.BaseTimestamp = c.now + c.cfg.DeleteRetention.Milliseconds()
	stamped.Attributes |= deleteHorizonFlag
	c.records = c.records[:0]
	for it.Next() {
		rec := *it.Record()
		rec.TimestampDelta = h.BaseTimestamp + rec.TimestampDelta - stamped.BaseTimestamp
		c.records = record.AppendRecord(c.records, &rec)
	}
	if err := it.Err(); err != nil {
		return nil, false, err
	}
	c.noteHorizon(stamped.BaseTimestamp)
	gs.changed = true
	c.out, err = record.AppendBatch(c.out[:0], stamped, c.records)
	return c.out, err == nil, err
}

// cleanData is cleanBatch for a data batch. The records of an aborted
// transaction all go, whatever the map says.
func (c *cleaner) cleanData(batch []byte, h log.BatchHeader, end int64, groupLast bool, gs *groupStats) (out []byte, keep bool, err error) {
	aborted := h.Transactional() && c.r.txns.isAborted(h.ProducerID, h.BaseOffset)
	hasHorizon := h.Attributes&deleteHorizonFlag != 0
	retainDeletes := !hasHorizon || c.now < h.BaseTimestamp
	_, it, err := record.Records(batch, MaxDecompressedBytes)
	if err != nil {
		return nil, false, err
	}
	c.kept = c.kept[:0]
	total, tombstones := 0, false
	maxTimestamp := int64(math.MinInt64)
	for it.Next() {
		rec := it.Record()
		total++
		offset := h.BaseOffset + int64(rec.OffsetDelta)
		stays := true
		switch {
		case aborted:
			stays = false
		case offset >= end:
			// Past what the map covers: the next pass decides.
		case rec.Key == nil:
			// Kafka's cleaner drops keyless records of compacted topics.
			stays = false
		default:
			newest, mapped := c.offsets.offsets[string(rec.Key)]
			latest := !mapped || offset >= newest
			stays = latest && (rec.Value != nil || retainDeletes)
			if latest && !stays {
				gs.tombstones++
			}
		}
		if stays {
			c.kept = append(c.kept, *rec)
			tombstones = tombstones || rec.Value == nil
			maxTimestamp = max(maxTimestamp, h.BaseTimestamp+rec.TimestampDelta)
		}
	}
	if err := it.Err(); err != nil {
		return nil, false, err
	}
	removed := total - len(c.kept)
	gs.records += int64(removed)
	setHorizon := tombstones && !hasHorizon
	if removed == 0 && !setHorizon {
		if tombstones {
			c.noteHorizon(h.BaseTimestamp)
		}
		return batch, true, nil
	}
	gs.changed = true
	if len(c.kept) == 0 {
		if !groupLast && (!h.Idempotent() || c.producers[h.ProducerID] != h.LastOffset()) {
			return nil, false, nil
		}
		// An empty batch keeps the offsets and producer metadata, as
		// Kafka's writeEmptyHeader.
		empty := h
		empty.Attributes = h.Attributes &^ (0x07 | deleteHorizonFlag)
		empty.BaseTimestamp, empty.MaxTimestamp, empty.RecordCount = h.MaxTimestamp, h.MaxTimestamp, 0
		c.out = log.AppendBatch(c.out[:0], empty, nil)
		return c.out, true, nil
	}
	// The cleaned batch keeps the offsets (base offset, last offset
	// delta), leader epoch, producer metadata and attributes of h.
	cleaned := h
	cleaned.MaxTimestamp, cleaned.RecordCount = maxTimestamp, int32(len(c.kept))
	if h.LogAppendTime() {
		cleaned.MaxTimestamp = h.MaxTimestamp
	}
	c.records = c.records[:0]
	if setHorizon {
		// KIP-534: the base timestamp becomes the delete horizon; the
		// records' deltas are recomputed so their timestamps stay.
		cleaned.BaseTimestamp = c.now + c.cfg.DeleteRetention.Milliseconds()
		cleaned.Attributes |= deleteHorizonFlag
		for i := range c.kept {
			rec := &c.kept[i]
			rec.TimestampDelta = h.BaseTimestamp + rec.TimestampDelta - cleaned.BaseTimestamp
			c.records = record.AppendRecord(c.records, rec)
		}
	} else {
		for i := range c.kept {
			c.records = append(c.records, c.kept[i].Raw...)
		}
	}
	if tombstones {
		c.noteHorizon(cleaned.BaseTimestamp)
	}
	records := c.records
	if codec := record.Codec(h.Compression()); codec != record.None {
		if c.compressed, err = record.Compress(c.compressed[:0], codec, c.records); err != nil {
			return nil, false, err
		}
		records = c.compressed
	}
	c.out = log.AppendBatch(c.out[:0], cleaned, records)
	return c.out, true, nil
}

func (c *cleaner) noteHorizon(horizon int64) {
	if c.minHorizon == 0 || horizon < c.minHorizon {
		c.minHorizon = max(horizon, 1)
	}
}

// throttle paces the cleaner's I/O at rate bytes per second (0: no limit),
// by the real clock: it is I/O pacing, not log semantics.
type throttle struct {
	rate  int64
	start time.Time
	bytes int64
}

// wait accounts n bytes and sleeps while the cleaner is ahead of its rate;
// it returns ctx's error once ctx is done.
func (t *throttle) wait(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.rate <= 0 {
		return nil
	}
	t.bytes += int64(n)
	due := t.start.Add(time.Duration(float64(t.bytes) / float64(t.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
