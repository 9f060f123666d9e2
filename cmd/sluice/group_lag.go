package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// timestampTimeout bounds the reads of the records at committed offsets
// that time lag needs; partitions not read by then show no time lag.
const timestampTimeout = 10 * time.Second

// lagRow is one partition of one group in `group lag` and `group
// describe`.
type lagRow struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the committed offset; nil when the group has none.
	Committed *int64 `json:"committed_offset"`
	// LogEnd is the partition's log end offset (high watermark); nil when
	// it could not be listed.
	LogEnd *int64 `json:"log_end_offset"`
	// Lag is LogEnd minus Committed (kadm's rules without a commit); nil
	// when unknown.
	Lag *int64 `json:"lag"`
	// TimeLag is the age in seconds of the record at the committed offset
	// (0 when caught up); nil when unknown.
	TimeLag *float64 `json:"time_lag_seconds"`
	// Member is the member consuming the partition, "" for none.
	Member string `json:"member_id,omitempty"`
}

// lagRows flattens kadm's lag of g into rows sorted by topic, partition.
func lagRows(g kadm.DescribedGroupLag) []lagRow {
	var rows []lagRow
	for _, l := range g.Lag.Sorted() {
		r := lagRow{Group: g.Group, Topic: l.Topic, Partition: l.Partition}
		if l.Commit.At >= 0 {
			r.Committed = ptrTo(l.Commit.At)
		}
		if l.End.Err == nil {
			r.LogEnd = ptrTo(l.End.Offset)
		}
		if l.Lag >= 0 && l.Err == nil {
			r.Lag = ptrTo(l.Lag)
		}
		if l.Member != nil {
			r.Member = l.Member.MemberID
		}
		rows = append(rows, r)
	}
	return rows
}

func ptrTo[T any](v T) *T { return &v }

// addTimeLags sets TimeLag on rows: 0 when caught up, else the age at now
// of the first record at or after the committed offset, read with a
// consumer of bootstrap (no group) for at most timestampTimeout. Rows
// whose record cannot be read keep a nil TimeLag.
func addTimeLags(ctx context.Context, bootstrap string, rows []lagRow, now time.Time) error {
	type tp struct {
		topic     string
		partition int32
	}
	want := make(map[tp]int64)
	consume := make(map[string]map[int32]kgo.Offset)
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Lag == nil || r.Committed == nil:
		case *r.Lag == 0:
			r.TimeLag = ptrTo(0.0)
		default:
			key := tp{r.Topic, r.Partition}
			if _, ok := want[key]; ok && want[key] != *r.Committed {
				// Two groups at different offsets of one partition: read
				// the earlier; the other gets its own pass below.
				continue
			}
			want[key] = *r.Committed
			if consume[r.Topic] == nil {
				consume[r.Topic] = make(map[int32]kgo.Offset)
			}
			consume[r.Topic][r.Partition] = kgo.NewOffset().At(*r.Committed)
		}
	}
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumePartitions(consume),
		kgo.FetchMaxPartitionBytes(1<<20), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timestampTimeout)
	defer cancel()
	found := make(map[tp]time.Time)
	for len(found) < len(want) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break // show what was read; the rest has no time lag
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			key := tp{rec.Topic, rec.Partition}
			if _, done := found[key]; done || rec.Offset < want[key] {
				return
			}
			found[key] = rec.Timestamp
			cl.PauseFetchPartitions(map[string][]int32{rec.Topic: {rec.Partition}})
		})
	}
	for i := range rows {
		r := &rows[i]
		if r.TimeLag != nil || r.Committed == nil {
			continue
		}
		key := tp{r.Topic, r.Partition}
		if ts, ok := found[key]; ok && want[key] == *r.Committed {
			r.TimeLag = ptrTo(max(now.Sub(ts), 0).Seconds())
		}
	}
	return nil
}

// formatTimeLag renders seconds as 0s, 850ms, 42s or 1h2m3s; "-" when
// unknown.
func formatTimeLag(seconds *float64) string {
	if seconds == nil {
		return "-"
	}
	d := time.Duration(*seconds * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func formatOptional(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// printLagTable writes rows as a table, with the GROUP column when
// withGroup is set.
func printLagTable(w io.Writer, rows []lagRow, withGroup bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withGroup {
		fmt.Fprint(tw, "GROUP\t")
	}
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tTIME-LAG")
	for _, r := range rows {
		if withGroup {
			fmt.Fprintf(tw, "%s\t", r.Group)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Topic, r.Partition, formatOptional(r.Committed), formatOptional(r.LogEnd), formatOptional(r.Lag), formatTimeLag(r.TimeLag))
	}
	return tw.Flush()
}

// errGroupNotFound reports a group the broker does not know.
var errGroupNotFound = errors.New("group not found (see `sluice group list`)")

func newGroupLagCommand(admin func(*cobra.Command) (*kadm.Client, context.Context, func(), error), bootstrap *string) *cobra.Command {
	var (
		format string
		watch  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "lag [GROUP...]",
		Short: "Show consumer lag in offsets and time, per group and partition",
		Long: "Show, for each group (every group when none is named) and each partition it\n" +
			"has committed or is assigned: the committed offset, the log end offset, the\n" +
			"lag in records and the time lag (the age of the record at the committed\n" +
			"offset, read from the broker; 0s when caught up, - when unknown).\n\n" +
			"--format json prints one JSON array of rows for scripts. --watch 5s prints\n" +
			"again every 5 seconds until interrupted (errors are reported on stderr and\n" +
			"the watch goes on). Exit status is 0 when the lag was printed (or the watch\n" +
			"was interrupted), 1 on any error (broker unreachable, unknown group), 2 on a\n" +
			"usage error.",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if watch < 0 {
				return usageErrorf("--watch %s is negative", watch)
			}
			once := func() error {
				adm, ctx, done, err := admin(cmd)
				if err != nil {
					return err
				}
				defer done()
				rows, err := groupLag(ctx, adm, *bootstrap, args)
				if err != nil {
					return err
				}
				return printLag(cmd.OutOrStdout(), rows, format)
			}
			if watch == 0 {
				return once()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cmd.SetContext(ctx)
			for {
				if format == "table" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", time.Now().UTC().Format(time.RFC3339))
				}
				if err := once(); err != nil && ctx.Err() == nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "sluice:", err)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(watch):
				}
				if format == "table" {
					fmt.Fprintln(cmd.OutOrStdout())
				}
			}
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.Flags().DurationVar(&watch, "watch", 0, "print again at this interval (e.g. 5s) until interrupted; 0 prints once")
	return cmd
}

// groupLag returns the lag rows of groups (every group when none), with
// time lag.
func groupLag(ctx context.Context, adm *kadm.Client, bootstrap string, groups []string) ([]lagRow, error) {
	named := len(groups) > 0
	if !named {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups on %s: %w", bootstrap, err)
		}
		groups = listed.Groups()
		sort.Strings(groups)
	}
	var rows []lagRow
	if len(groups) > 0 {
		lags, err := adm.Lag(ctx, groups...)
		if err != nil {
			return nil, fmt.Errorf("lag of groups on %s: %w", bootstrap, err)
		}
		for _, g := range groups {
			l, ok := lags[g]
			switch {
			case !ok:
				return nil, fmt.Errorf("group %s: not in the broker's answer", g)
			case l.Error() != nil:
				return nil, fmt.Errorf("group %s: %w", g, l.Error())
			case named && l.State == "Dead" && len(l.Lag) == 0:
				return nil, fmt.Errorf("group %s: %w", g, errGroupNotFound)
			}
			rows = append(rows, lagRows(l)...)
		}
	}
	if err := addTimeLags(ctx, bootstrap, rows, time.Now()); err != nil {
		return nil, err
	}
	return rows, nil
}

// printLag writes rows as a table or as one JSON array.
func printLag(w io.Writer, rows []lagRow, format string) error {
	if format == "json" {
		if rows == nil {
			rows = []lagRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return printLagTable(w, rows, true)
}
