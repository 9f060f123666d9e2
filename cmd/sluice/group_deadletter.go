package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Provenance headers `group dead-letter` adds to each copied record.
const (
	dlqHeaderTopic     = "sluice.dlq.topic"
	dlqHeaderPartition = "sluice.dlq.partition"
	dlqHeaderOffset    = "sluice.dlq.offset"
	dlqHeaderGroup     = "sluice.dlq.group"
	dlqHeaderReason    = "sluice.dlq.reason"
	dlqHeaderTimestamp = "sluice.dlq.timestamp"
)

// deadLetterSpec is what dead-letter was asked to do.
type deadLetterSpec struct {
	topic  string
	offset int64
	count  int64
	to     string
	dryRun bool
	force  bool
	format string
	set    map[string]bool
}

func newDeadLetterCommand(admin func(*cobra.Command) (*kadm.Client, context.Context, func(), error), bootstrap *string) *cobra.Command {
	spec := deadLetterSpec{set: map[string]bool{}}
	cmd := &cobra.Command{
		Use:   "dead-letter GROUP --topic TOPIC:P --offset O [--count N] --to TOPIC [--dry-run] [--force]",
		Short: "Copy the records a group is stuck on to a dead-letter topic and commit past them",
		Long: "Unblock a stopped group stuck on a record (see the STUCK column of group\n" +
			"describe): copy the records [O, O+N) of partition P of TOPIC to the --to topic,\n" +
			"keeping key, value, headers and timestamp and adding the headers\n" +
			"sluice.dlq.topic, sluice.dlq.partition, sluice.dlq.offset, sluice.dlq.group,\n" +
			"sluice.dlq.reason (manual) and sluice.dlq.timestamp (ms, when copied); wait\n" +
			"for every replica to have them (acks=all); then commit the group's offset of\n" +
			"TOPIC:P to O+N. The --to topic is created if missing (1 partition, the\n" +
			"source's replication factor). Refused while the group has members (stop its\n" +
			"consumers first, as for reset-offsets), and for an O below the group's\n" +
			"committed offset (those records were consumed already) unless --force.\n" +
			"--dry-run reads and prints the records without copying or committing.\n" +
			"Exit status: 0 done, 1 failed or refused, 2 usage error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.Flags().Visit(func(f *pflag.Flag) { spec.set[f.Name] = true })
			topic, partition, err := spec.check()
			if err != nil {
				return err
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			return deadLetter(ctx, adm, *bootstrap, cmd.OutOrStdout(), args[0], topic, partition, spec)
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.topic, "topic", "", "the partition the group is stuck on: TOPIC:P")
	f.Int64Var(&spec.offset, "offset", 0, "first offset to dead-letter (usually the group's committed offset)")
	f.Int64Var(&spec.count, "count", 1, "how many offsets to dead-letter from --offset")
	f.StringVar(&spec.to, "to", "", "dead-letter topic (created if missing)")
	f.BoolVar(&spec.dryRun, "dry-run", false, "print what would be copied and committed, change nothing")
	f.BoolVar(&spec.force, "force", false, "allow an --offset below the group's committed offset")
	f.StringVar(&spec.format, "format", "table", "output format: table (for people) or json (for scripts)")
	return cmd
}

// check validates the flags and returns the source topic and partition.
func (s deadLetterSpec) check() (string, int32, error) {
	if err := checkFormat(s.format); err != nil {
		return "", 0, err
	}
	for _, name := range []string{"topic", "offset", "to"} {
		if !s.set[name] {
			return "", 0, usageErrorf("--%s is required", name)
		}
	}
	topic, partitions, err := parseTopicPartitions(s.topic)
	if err != nil {
		return "", 0, err
	}
	if len(partitions) != 1 {
		return "", 0, usageErrorf("--topic %q must name one partition: TOPIC:P", s.topic)
	}
	switch {
	case s.offset < 0:
		return "", 0, usageErrorf("--offset %d is negative", s.offset)
	case s.count < 1:
		return "", 0, usageErrorf("--count %d must be at least 1", s.count)
	case s.to == "":
		return "", 0, usageErrorf("--to names no topic")
	case s.to == topic:
		return "", 0, usageErrorf("--to %s is the source topic", s.to)
	}
	return topic, partitions[0], nil
}

// deadLetterResult is what dead-letter did (--format json).
type deadLetterResult struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset and Count are the range [Offset, Offset+Count) dead-lettered.
	Offset int64  `json:"offset"`
	Count  int64  `json:"count"`
	To     string `json:"to"`
	// CreatedTopic is true when the dead-letter topic was created.
	CreatedTopic bool `json:"created_topic"`
	// PreviousOffset is the group's committed offset before (null: none).
	PreviousOffset *int64 `json:"previous_offset"`
	// CommittedOffset is the offset committed (Offset+Count), null with
	// --dry-run.
	CommittedOffset *int64           `json:"committed_offset"`
	DryRun          bool             `json:"dry_run"`
	Records         []deadLetterCopy `json:"records"`
}

// deadLetterCopy is one record copied: where it was and where it went (-1
// with --dry-run).
type deadLetterCopy struct {
	SourceOffset int64 `json:"source_offset"`
	DLQPartition int32 `json:"dlq_partition"`
	DLQOffset    int64 `json:"dlq_offset"`
}

func deadLetter(ctx context.Context, adm *kadm.Client, bootstrap string, w io.Writer, group, topic string, partition int32, spec deadLetterSpec) error {
	if err := requireNoMembers(ctx, adm, group, "dead-lettering records"); err != nil {
		return err
	}
	res := deadLetterResult{Group: group, Topic: topic, Partition: partition, Offset: spec.offset, Count: spec.count, To: spec.to, DryRun: spec.dryRun, Records: []deadLetterCopy{}}

	topics, err := adm.ListTopics(ctx, topic, spec.to)
	if err != nil {
		return fmt.Errorf("list topics %s, %s: %w", topic, spec.to, err)
	}
	src, ok := topics[topic]
	if !ok || src.Err != nil {
		return fmt.Errorf("topic %s: %w", topic, errors.Join(src.Err, errIf(!ok, kerr.UnknownTopicOrPartition)))
	}
	sp, ok := src.Partitions[partition]
	if !ok {
		return fmt.Errorf("topic %s has no partition %d", topic, partition)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	start, okStart := starts.Lookup(topic, partition)
	end, okEnd := ends.Lookup(topic, partition)
	if !okStart || !okEnd || start.Err != nil || end.Err != nil {
		return fmt.Errorf("list offsets of %s-%d: %w", topic, partition, errors.Join(start.Err, end.Err))
	}
	last := spec.offset + spec.count
	if spec.offset < start.Offset || last > end.Offset {
		return fmt.Errorf("offsets [%d, %d) are not all in %s-%d, which holds [%d, %d)", spec.offset, last, topic, partition, start.Offset, end.Offset)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}
	if c, ok := committed.Lookup(topic, partition); ok && c.Err == nil && c.At >= 0 {
		res.PreviousOffset = ptrTo(c.At)
		if spec.offset < c.At && !spec.force {
			return fmt.Errorf("--offset %d is below group %s's committed offset %d of %s-%d: those records were consumed already, nothing to unblock (--force to copy them anyway)", spec.offset, group, c.At, topic, partition)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(spec.offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	defer cl.Close()
	records, err := readRange(ctx, cl, topic, partition, spec.offset, last)
	if err != nil {
		return err
	}

	if dlq, ok := topics[spec.to]; !ok || errors.Is(dlq.Err, kerr.UnknownTopicOrPartition) {
		if !spec.dryRun {
			rf := int16(len(sp.Replicas))
			created, err := adm.CreateTopic(ctx, 1, rf, nil, spec.to)
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create dead-letter topic %s: %w", spec.to, err)
			}
			if created.Err != nil && !errors.Is(created.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create dead-letter topic %s: %w", spec.to, created.Err)
			}
			res.CreatedTopic = err == nil && created.Err == nil
		} else {
			res.CreatedTopic = true // would be
		}
	} else if dlq.Err != nil {
		return fmt.Errorf("dead-letter topic %s: %w", spec.to, dlq.Err)
	}

	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for _, r := range records {
		c := deadLetterCopy{SourceOffset: r.Offset, DLQPartition: -1, DLQOffset: -1}
		if !spec.dryRun {
			out := &kgo.Record{Topic: spec.to, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp,
				Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
					kgo.RecordHeader{Key: dlqHeaderTopic, Value: []byte(topic)},
					kgo.RecordHeader{Key: dlqHeaderPartition, Value: []byte(strconv.Itoa(int(partition)))},
					kgo.RecordHeader{Key: dlqHeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
					kgo.RecordHeader{Key: dlqHeaderGroup, Value: []byte(group)},
					kgo.RecordHeader{Key: dlqHeaderReason, Value: []byte("manual")},
					kgo.RecordHeader{Key: dlqHeaderTimestamp, Value: []byte(now)})}
			if err := cl.ProduceSync(ctx, out).FirstErr(); err != nil {
				return fmt.Errorf("copy offset %d of %s-%d to %s (nothing committed; records copied before it stay there): %w", r.Offset, topic, partition, spec.to, err)
			}
			c.DLQPartition, c.DLQOffset = out.Partition, out.Offset
		}
		res.Records = append(res.Records, c)
	}
	if !spec.dryRun {
		commit := make(kadm.Offsets)
		commit.Add(kadm.Offset{Topic: topic, Partition: partition, At: last, LeaderEpoch: -1})
		if err := commitPlan(ctx, adm, group, commit); err != nil {
			return fmt.Errorf("records copied to %s, but: %w", spec.to, err)
		}
		res.CommittedOffset = ptrTo(last)
	}
	if spec.format == "json" {
		return writeJSON(w, res)
	}
	return printDeadLetter(w, res)
}

// errIf returns err when cond holds, else nil.
func errIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// readRange reads the committed records of topic-partition with offsets
// in [from, to) (a compacted log may lack some), with cl consuming from
// from; it stops at the first record at or past to-1, or when the context
// ends.
func readRange(ctx context.Context, cl *kgo.Client, topic string, partition int32, from, to int64) ([]*kgo.Record, error) {
	var out []*kgo.Record
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read offsets [%d, %d) of %s-%d: got %d records: %w", from, to, topic, partition, len(out), err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("read %s-%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if done || r.Offset < from {
				return
			}
			if r.Offset >= to {
				done = true
				return
			}
			out = append(out, r)
			if r.Offset == to-1 {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}

// printDeadLetter writes res as a table and a summary.
func printDeadLetter(w io.Writer, res deadLetterResult) error {
	if res.CreatedTopic {
		verb := "created"
		if res.DryRun {
			verb = "would create"
		}
		fmt.Fprintf(w, "%s dead-letter topic %s (1 partition, replication factor of %s)\n", verb, res.To, res.Topic)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET\tDLQ-TOPIC\tDLQ-PARTITION\tDLQ-OFFSET")
	for _, c := range res.Records {
		dp, do := "-", "-"
		if c.DLQOffset >= 0 {
			dp, do = strconv.Itoa(int(c.DLQPartition)), strconv.FormatInt(c.DLQOffset, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", res.Topic, res.Partition, c.SourceOffset, res.To, dp, do)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	previous := "none"
	if res.PreviousOffset != nil {
		previous = strconv.FormatInt(*res.PreviousOffset, 10)
	}
	if res.DryRun {
		fmt.Fprintf(w, "dry run: nothing copied or committed; would commit offset %d of group %s on %s-%d (was %s)\n", res.Offset+res.Count, res.Group, res.Topic, res.Partition, previous)
		return nil
	}
	fmt.Fprintf(w, "copied %d records to %s; committed offset %d of group %s on %s-%d (was %s)\n", len(res.Records), res.To, *res.CommittedOffset, res.Group, res.Topic, res.Partition, previous)
	return nil
}
