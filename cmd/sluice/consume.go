package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupPollInterval is how often a group consumer with --until-end
// re-checks its assigned partitions while no records arrive.
const groupPollInterval = 500 * time.Millisecond

// consumeOptions are the flags of `sluice consume`.
type consumeOptions struct {
	partitions []int32
	offset     string
	group      string
	num        int64
	untilEnd   bool
	format     string
}

// startKind is where consuming starts, parsed from --offset.
type startKind int

const (
	startBeginning startKind = iota // the log start offset
	startEnd                        // the high watermark: only new records
	startExact                      // offset n
	startFromEnd                    // n records before the end
	startTime                       // the first record at or after ms
)

// startSpec is a parsed --offset.
type startSpec struct {
	kind startKind
	n    int64 // startExact: the offset; startFromEnd: how many back
	ms   int64 // startTime: milliseconds since the epoch
}

// parseStart parses --offset: beginning (or start), end, N, -N or @TIME
// with TIME RFC 3339 or milliseconds since the epoch.
func parseStart(s string) (startSpec, error) {
	switch s {
	case "beginning", "start":
		return startSpec{kind: startBeginning}, nil
	case "end":
		return startSpec{kind: startEnd}, nil
	}
	if at, ok := strings.CutPrefix(s, "@"); ok {
		if ms, err := strconv.ParseInt(at, 10, 64); err == nil && ms >= 0 {
			return startSpec{kind: startTime, ms: ms}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return startSpec{}, usageErrorf("--offset %q: after @ give RFC 3339 time (2024-05-01T12:00:00Z) or milliseconds since the epoch", s)
		}
		return startSpec{kind: startTime, ms: t.UnixMilli()}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return startSpec{}, usageErrorf("--offset %q is none of beginning, end, an offset N, -N (N before the end) or @TIME", s)
	}
	if n < 0 {
		return startSpec{kind: startFromEnd, n: -n}, nil
	}
	return startSpec{kind: startExact, n: n}, nil
}

// resetOffset is spec as kgo's offset for partitions a group has not
// committed.
func (s startSpec) resetOffset() kgo.Offset {
	switch s.kind {
	case startEnd:
		return kgo.NewOffset().AtEnd()
	case startExact:
		return kgo.NewOffset().At(s.n)
	case startFromEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case startTime:
		return kgo.NewOffset().AfterMilli(s.ms)
	}
	return kgo.NewOffset().AtStart()
}

func newConsumeCommand() *cobra.Command {
	var (
		o         consumeOptions
		bootstrap *string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read records from a topic and print them, as kcat -C does",
		Long: "Read records from a topic and print each with --format: a kcat-style format\n" +
			"string (default '%s\\n', the value and a newline) or json (one JSON object per\n" +
			"line). Format tokens:\n\n" +
			"  %t topic   %p partition   %o offset   %T timestamp (ms since the epoch)\n" +
			"  %k key     %K key length  %s value    %S value length\n" +
			"  %h headers as name=value,name=value   %% percent   \\n \\r \\t \\\\ escapes\n\n" +
			"--offset says where to start in each partition: beginning (default), end,\n" +
			"an offset N, -N (N records before the end) or @TIME (the first record at or\n" +
			"after TIME, RFC 3339 or ms since the epoch). With --group the group's\n" +
			"committed offsets come first, --offset applies only where it has none, and\n" +
			"printed records are committed on exit.\n\n" +
			"It follows new records until interrupted (SIGINT, SIGTERM), unless --num N\n" +
			"(stop after N records) or --until-end (stop at the high watermarks read at\n" +
			"start; with --group, of the partitions assigned to this member). While stdout\n" +
			"is not a terminal and stderr is, a progress line is shown on stderr.\n\n" +
			"Exit status: 0 when stopped by --num, --until-end or a signal; 1 when the\n" +
			"topic or a partition does not exist, an --offset is out of range, or the\n" +
			"broker fails; 2 on a usage error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err := parseStart(o.offset)
			if err != nil {
				return err
			}
			var format recordFormatter
			switch o.format {
			case "json":
				format = appendJSONRecord
			case "table":
				return usageErrorf("consume prints records, not a table: give --format json or a format string such as '%%k %%s\\n'")
			default:
				if format, err = compileRecordFormat(o.format); err != nil {
					return err
				}
			}
			if o.num < 0 {
				return usageErrorf("--num %d: give a positive count, or 0 for no limit", o.num)
			}
			if o.group != "" && len(o.partitions) > 0 {
				return usageErrorf("--partition and --group exclude each other: a group assigns partitions to its members")
			}
			for _, p := range o.partitions {
				if p < 0 {
					return usageErrorf("--partition %d is not a partition number", p)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return consume(ctx, cmd, *bootstrap, args[0], o, start, format)
		},
	}
	bootstrap = addBootstrapFlag(cmd)
	f := cmd.Flags()
	f.Int32SliceVarP(&o.partitions, "partition", "p", nil, "read only these partitions (repeatable or comma-separated); default all")
	f.StringVarP(&o.offset, "offset", "o", "beginning", "where to start: beginning, end, N, -N (N before the end) or @TIME (RFC 3339 or ms)")
	f.StringVarP(&o.group, "group", "g", "", "consume as a member of this consumer group, committing what is printed")
	f.Int64VarP(&o.num, "num", "n", 0, "stop after this many records; 0: no limit")
	f.BoolVarP(&o.untilEnd, "until-end", "e", false, "stop at the high watermarks read at start")
	f.StringVarP(&o.format, "format", "f", `%s\n`, "json, or a kcat-style format string (see above)")
	return cmd
}

// partitionRange is where one partition starts and, for --until-end,
// ends.
type partitionRange struct {
	start int64 // the first offset to read
	end   int64 // the high watermark at start
}

// startRanges lists the start and end offsets of topic's partitions (all
// when partitions is empty) and resolves spec against them. A named
// partition that does not exist, or an exact offset outside the log, is an
// error.
func startRanges(ctx context.Context, adm *kadm.Client, bootstrap, topic string, partitions []int32, spec startSpec) (map[int32]partitionRange, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, unreachable(bootstrap, "look up topic "+topic, err)
	}
	d, ok := md.Topics[topic]
	if !ok || d.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, errTopicNotFound)
	}
	if len(partitions) == 0 {
		for p := range d.Partitions {
			partitions = append(partitions, p)
		}
	}
	for _, p := range partitions {
		if _, ok := d.Partitions[p]; !ok {
			return nil, fmt.Errorf("topic %s has %d partitions (0 to %d), not partition %d", topic, len(d.Partitions), len(d.Partitions)-1, p)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, unreachable(bootstrap, "list start offsets of "+topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, unreachable(bootstrap, "list end offsets of "+topic, err)
	}
	var byTime kadm.ListedOffsets
	if spec.kind == startTime {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, spec.ms, topic); err != nil {
			return nil, unreachable(bootstrap, "list offsets of "+topic+" by time", err)
		}
	}
	ranges := make(map[int32]partitionRange, len(partitions))
	for _, p := range partitions {
		s, okStart := starts.Lookup(topic, p)
		e, okEnd := ends.Lookup(topic, p)
		if !okStart || !okEnd || s.Err != nil || e.Err != nil {
			return nil, fmt.Errorf("list offsets of %s-%d: %w", topic, p, errors.Join(s.Err, e.Err))
		}
		r := partitionRange{end: e.Offset}
		switch spec.kind {
		case startBeginning:
			r.start = s.Offset
		case startEnd:
			r.start = e.Offset
		case startExact:
			if spec.n < s.Offset || spec.n > e.Offset {
				return nil, fmt.Errorf("--offset %d is outside partition %d of %s, which holds offsets %d to %d: give an offset in that range, or beginning or end", spec.n, p, topic, s.Offset, e.Offset)
			}
			r.start = spec.n
		case startFromEnd:
			r.start = max(e.Offset-spec.n, s.Offset)
		case startTime:
			r.start = e.Offset // no record at or after the time
			if o, ok := byTime.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
				r.start = o.Offset
			}
		}
		ranges[p] = r
	}
	return ranges, nil
}

// consumeState tracks what was printed and, for --until-end, how far each
// partition has been read.
type consumeState struct {
	ranges map[int32]partitionRange

	mu sync.Mutex
	// position is the next offset to read of each partition with a known
	// position: every partition without a group; with one, those assigned
	// and read from or resolved from the group's commit.
	position map[int32]int64
	// assigned are the group's partitions this member holds (nil without
	// a group).
	assigned map[int32]bool

	printed atomic.Int64
	bytes   atomic.Int64
}

// reachedEnd reports whether every partition of interest was read up to
// its high watermark at start; group members resolve unknown positions
// of assigned partitions with committed (the group's commits; nil
// without a group).
func (s *consumeState) reachedEnd(topic string, committed func() map[string]map[int32]kgo.EpochOffset) bool {
	var commits map[int32]kgo.EpochOffset
	if committed != nil {
		// Asked before taking mu: kgo may hold its own lock while it
		// calls the assignment callbacks, which take mu.
		commits = committed()[topic]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assigned == nil {
		for p, r := range s.ranges {
			if s.position[p] < r.end {
				return false
			}
		}
		return true
	}
	if len(s.assigned) == 0 {
		return false // not joined yet
	}
	for p := range s.assigned {
		pos, known := s.position[p]
		if !known {
			if c, ok := commits[p]; ok && c.Offset >= 0 {
				pos = c.Offset
			} else {
				pos = s.ranges[p].start // --offset applies
			}
		}
		if pos < s.ranges[p].end {
			return false
		}
	}
	return true
}

func consume(ctx context.Context, cmd *cobra.Command, bootstrap, topic string, o consumeOptions, spec startSpec, format recordFormatter) error {
	adm, actx, done, err := newAdmin(cmd, bootstrap)
	if err != nil {
		return err
	}
	ranges, err := startRanges(actx, adm, bootstrap, topic, o.partitions, spec)
	done()
	if err != nil {
		return err
	}
	st := &consumeState{ranges: ranges, position: map[int32]int64{}}

	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.FetchMaxWait(time.Second)}
	if o.group == "" {
		offsets := make(map[int32]kgo.Offset, len(ranges))
		for p, r := range ranges {
			offsets[p] = kgo.NewOffset().At(r.start)
			st.position[p] = r.start
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	} else {
		st.assigned = map[int32]bool{}
		track := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
			return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				st.mu.Lock()
				defer st.mu.Unlock()
				for _, p := range ps[topic] {
					if add {
						st.assigned[p] = true
					} else {
						delete(st.assigned, p)
						delete(st.position, p)
					}
				}
			}
		}
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(spec.resetOffset()),
			kgo.AutoCommitMarks(), kgo.OnPartitionsAssigned(track(true)), kgo.OnPartitionsRevoked(track(false)), kgo.OnPartitionsLost(track(false)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	defer cl.Close()

	var total int64
	for _, r := range ranges {
		total += max(r.end-r.start, 0)
	}
	stopProgress := startProgress(cmd.ErrOrStderr(), isTerminal(os.Stderr) && !isTerminal(os.Stdout), func() string {
		line := fmt.Sprintf("consumed %d records (%s) from %s", st.printed.Load(), formatBytes(st.bytes.Load()), topic)
		if o.untilEnd && o.group == "" {
			line += fmt.Sprintf(", %d to the end", total)
		}
		return line
	})
	defer stopProgress()

	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	runErr := consumeLoop(ctx, cl, topic, o, st, format, out)
	stopProgress()
	if err := out.Flush(); err != nil && runErr == nil {
		runErr = fmt.Errorf("write records: %w", err)
	}
	if o.group != "" {
		// Commit what was printed, even after an interrupt.
		cctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && runErr == nil {
			runErr = fmt.Errorf("commit offsets of group %s: %w", o.group, err)
		}
	}
	return runErr
}

// consumeLoop prints records until ctx is done, --num records were
// printed or, with --until-end, every partition reached its end.
func consumeLoop(ctx context.Context, cl *kgo.Client, topic string, o consumeOptions, st *consumeState, format recordFormatter, out *bufio.Writer) error {
	var buf []byte
	var committed func() map[string]map[int32]kgo.EpochOffset // the group's commits, with one
	if o.group != "" {
		committed = cl.CommittedOffsets
	}
	for {
		if o.untilEnd && st.reachedEnd(topic, committed) {
			return nil
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.untilEnd && o.group != "" {
			// Nothing may arrive for a partition already at its end:
			// wake to re-check the assignment.
			pollCtx, cancel = context.WithTimeout(ctx, groupPollInterval)
		}
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: exit 0
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s-%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		var marks []*kgo.Record
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if o.untilEnd && r.Offset >= st.ranges[r.Partition].end {
				return // written after start: beyond the end asked for
			}
			buf = format(buf[:0], r)
			out.Write(buf)
			st.printed.Add(1)
			st.bytes.Add(int64(len(r.Key) + len(r.Value)))
			st.mu.Lock()
			st.position[r.Partition] = r.Offset + 1
			st.mu.Unlock()
			marks = append(marks, r)
			if o.num > 0 && st.printed.Load() >= o.num {
				stop = true
			}
		})
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write records: %w", err)
		}
		if o.group != "" && len(marks) > 0 {
			cl.MarkCommitRecords(marks...)
		}
		if stop {
			return nil
		}
	}
}
