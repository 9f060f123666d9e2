package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceDeliveryTimeout bounds how long one record may wait for its
// acknowledgement, retries included, before produce fails.
const produceDeliveryTimeout = 30 * time.Second

// produceOptions are the flags of `sluice produce`.
type produceOptions struct {
	key          string
	keySet       bool
	keySeparator string
	headers      []string
	acks         string
	compression  string
	partition    int32
	files        []string
	format       string
}

func newProduceCommand() *cobra.Command {
	var (
		o         produceOptions
		bootstrap *string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records to a topic: one per line of stdin, or one per --file",
		Long: "Write records to a topic. Each line of stdin is one record's value (the\n" +
			"newline removed); with --file, each named file is one record instead and\n" +
			"stdin is not read. --key gives every record that key; --key-separator SEP\n" +
			"splits each line at its first SEP into key and value (as kcat -K). Headers\n" +
			"(--header name=value, repeatable) go on every record. Without --partition\n" +
			"the default partitioner places records (by key hash when keyed).\n\n" +
			"When done, a table gives per partition the records written and their first\n" +
			"and last offsets (-1 with --acks 0, which gets no offsets); --format json\n" +
			"gives the same as one JSON object. While stdin is piped and stderr is a\n" +
			"terminal, a progress line is shown on stderr.\n\n" +
			"Exit status: 0 when every record was acknowledged; 1 when the topic does not\n" +
			"exist, a record was not acknowledged, a line lacks the key separator or\n" +
			"the command was interrupted (records read before that are still sent); 2\n" +
			"on a usage error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.keySet = cmd.Flags().Changed("key")
			if err := o.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return produce(ctx, cmd, *bootstrap, args[0], o)
		},
	}
	bootstrap = addBootstrapFlag(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.key, "key", "k", "", "key of every record")
	f.StringVarP(&o.keySeparator, "key-separator", "K", "", "split each line at its first SEP into key and value (as kcat -K)")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "header name=value on every record (repeatable)")
	f.StringVar(&o.acks, "acks", "all", "acknowledgement to wait for: all (every in-sync replica), 1 (the leader) or 0 (none)")
	f.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.Int32VarP(&o.partition, "partition", "p", -1, "write every record to this partition; -1: the partitioner chooses")
	f.StringArrayVarP(&o.files, "file", "f", nil, "write this file's whole content as one record (repeatable); stdin is then not read")
	f.StringVar(&o.format, "format", "table", "summary format: table (for people) or json (for scripts)")
	return cmd
}

func (o produceOptions) check() error {
	if err := checkFormat(o.format); err != nil {
		return err
	}
	if _, err := parseAcks(o.acks); err != nil {
		return err
	}
	if _, err := parseCompression(o.compression); err != nil {
		return err
	}
	if o.keySet && o.keySeparator != "" {
		return usageErrorf("give --key (one key for all) or --key-separator (a key per line), not both")
	}
	if o.keySeparator != "" && len(o.files) > 0 {
		return usageErrorf("--key-separator splits lines of stdin; with --file use --key")
	}
	if o.partition < -1 {
		return usageErrorf("--partition %d: give a partition number, or -1 for the partitioner", o.partition)
	}
	if _, err := parseHeaders(o.headers); err != nil {
		return err
	}
	return nil
}

func parseAcks(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, usageErrorf("--acks %q is none of all, 1, 0", s)
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usageErrorf("--compression %q is none of none, gzip, snappy, lz4, zstd", s)
}

// parseHeaders turns name=value pairs into record headers, in order.
func parseHeaders(pairs []string) ([]kgo.RecordHeader, error) {
	var hs []kgo.RecordHeader
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--header %q is not name=value", kv)
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return hs, nil
}

// producedPartition is what was written to one partition; also the JSON
// output.
type producedPartition struct {
	Partition int32 `json:"partition"`
	Records   int64 `json:"records"`
	// FirstOffset and LastOffset are -1 when unknown (acks 0).
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

// produceTally counts acknowledged records and the first error; the
// promises of kgo update it from its goroutines.
type produceTally struct {
	mu         sync.Mutex
	partitions map[int32]*producedPartition
	acked      int64
	bytes      int64
	firstErr   error
}

func (t *produceTally) promise(r *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.firstErr == nil {
			t.firstErr = fmt.Errorf("record to partition %d not acknowledged: %w", r.Partition, err)
		}
		return
	}
	t.acked++
	t.bytes += int64(len(r.Key) + len(r.Value))
	p := t.partitions[r.Partition]
	if p == nil {
		p = &producedPartition{Partition: r.Partition, FirstOffset: r.Offset, LastOffset: r.Offset}
		t.partitions[r.Partition] = p
	}
	p.Records++
	p.FirstOffset = min(p.FirstOffset, r.Offset)
	p.LastOffset = max(p.LastOffset, r.Offset)
}

func (t *produceTally) err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstErr
}

func produce(ctx context.Context, cmd *cobra.Command, bootstrap, topic string, o produceOptions) error {
	acks, _ := parseAcks(o.acks)                // checked
	codec, _ := parseCompression(o.compression) // checked
	headers, _ := parseHeaders(o.headers)       // checked
	if err := checkPartition(cmd, bootstrap, topic, o.partition); err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.RequiredAcks(acks), kgo.ProducerBatchCompression(codec),
		kgo.RecordDeliveryTimeout(produceDeliveryTimeout)}
	if o.acks != "all" && o.acks != "-1" {
		// Idempotent writes need acks=all; without them one request in
		// flight keeps each partition's records in order.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	defer cl.Close()

	tally := &produceTally{partitions: map[int32]*producedPartition{}}
	var sent atomic.Int64 // records handed to the client
	newRecord := func(key, value []byte) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: key, Value: value, Headers: headers}
		if o.partition >= 0 {
			r.Partition = o.partition
		}
		if o.keySet {
			r.Key = []byte(o.key)
		}
		return r
	}
	// send hands r to the client unless interrupted. Records are produced
	// without ctx: one read before an interrupt is still delivered, not
	// failed by the cancellation.
	errInterrupted := errors.New("interrupted")
	send := func(r *kgo.Record) error {
		if ctx.Err() != nil {
			return errInterrupted
		}
		sent.Add(1)
		cl.Produce(context.WithoutCancel(ctx), r, tally.promise)
		return nil
	}

	stopProgress := startProgress(cmd.ErrOrStderr(), isTerminal(os.Stderr) && !isTerminal(os.Stdin), func() string {
		tally.mu.Lock()
		defer tally.mu.Unlock()
		return fmt.Sprintf("produced %d records (%s) to %s", tally.acked, formatBytes(tally.bytes), topic)
	})
	defer stopProgress()

	// The reader runs apart so that an interrupt is noticed while it
	// blocks on stdin; it stops at the end of input, at a bad line or
	// once the first record fails.
	readDone := make(chan error, 1)
	go func() {
		if len(o.files) > 0 {
			for _, name := range o.files {
				value, err := os.ReadFile(name)
				if err != nil {
					readDone <- fmt.Errorf("read --file: %w", err)
					return
				}
				if err := send(newRecord(nil, value)); err != nil {
					readDone <- err
					return
				}
			}
			readDone <- nil
			return
		}
		readDone <- readLines(cmd.InOrStdin(), func(n int, line []byte) error {
			if err := tally.err(); err != nil {
				return err
			}
			var key []byte
			if o.keySeparator != "" {
				k, v, ok := bytes.Cut(line, []byte(o.keySeparator))
				if !ok {
					return fmt.Errorf("line %d has no key separator %q: give every line as KEY%sVALUE", n, o.keySeparator, o.keySeparator)
				}
				key, line = k, v
			}
			return send(newRecord(key, line))
		})
	}()
	var readErr error
	select {
	case readErr = <-readDone:
	case <-ctx.Done():
		// The reader may be blocked on stdin; it sends nothing more, and
		// the process exits soon after.
		readErr = errInterrupted
	}
	// What was read is still sent, each record within its delivery
	// timeout, which bounds the flush.
	flushCtx, cancel := context.WithTimeout(context.Background(), produceDeliveryTimeout+5*time.Second)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil {
		return fmt.Errorf("flush records to %s: %w", topic, err)
	}
	stopProgress()

	tally.mu.Lock()
	rows := make([]producedPartition, 0, len(tally.partitions))
	for _, p := range tally.partitions {
		row := *p
		if o.acks == "0" {
			row.FirstOffset, row.LastOffset = -1, -1
		}
		rows = append(rows, row)
	}
	acked, firstErr := tally.acked, tally.firstErr
	tally.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool { return rows[i].Partition < rows[j].Partition })
	failed := firstErr != nil || readErr != nil
	if acked > 0 || !failed {
		if err := printProduced(cmd.OutOrStdout(), topic, rows, o.format); err != nil {
			return err
		}
	}
	total := sent.Load()
	switch {
	case firstErr != nil:
		return fmt.Errorf("%d of %d records acknowledged; %w", acked, total, firstErr)
	case readErr != nil:
		return fmt.Errorf("stopped after %d records: %w", acked, readErr)
	}
	return nil
}

// readLines calls fn with each line of r (1-based number, newline
// removed; a last line without one counts) until the end or an error of
// fn or r.
func readLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
}

// checkPartition checks that topic exists and, when partition is not -1,
// has that partition, so that a mistake fails at once instead of after
// the delivery timeout.
func checkPartition(cmd *cobra.Command, bootstrap, topic string, partition int32) error {
	adm, ctx, done, err := newAdmin(cmd, bootstrap)
	if err != nil {
		return err
	}
	defer done()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return unreachable(bootstrap, "look up topic "+topic, err)
	}
	d, ok := md.Topics[topic]
	if !ok || d.Err != nil {
		return fmt.Errorf("topic %s: %w; create it with `sluice topic create %s`", topic, errTopicNotFound, topic)
	}
	if partition >= int32(len(d.Partitions)) {
		return fmt.Errorf("topic %s has %d partitions (0 to %d), not partition %d", topic, len(d.Partitions), len(d.Partitions)-1, partition)
	}
	return nil
}

func printProduced(w io.Writer, topic string, rows []producedPartition, format string) error {
	if format == "json" {
		var records int64
		for _, r := range rows {
			records += r.Records
		}
		return writeJSON(w, struct {
			Topic      string              `json:"topic"`
			Records    int64               `json:"records"`
			Partitions []producedPartition `json:"partitions"`
		}{topic, records, rows})
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tRECORDS\tFIRST-OFFSET\tLAST-OFFSET")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", topic, r.Partition, r.Records, formatOffset(r.FirstOffset), formatOffset(r.LastOffset))
	}
	return tw.Flush()
}
