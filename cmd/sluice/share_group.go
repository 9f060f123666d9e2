package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errShareGroupNotFound reports a share group the broker does not know.
var errShareGroupNotFound = errors.New("share group not found (see `sluice share-group list`)")

func newShareGroupCommand() *cobra.Command {
	var bootstrap string
	cmd := &cobra.Command{
		Use:   "share-group",
		Short: "List, describe, configure, reset the offsets of and delete share groups",
		Long: "List, describe, configure, reset the start offsets of and delete share groups\n" +
			"(KIP-932 queues) on a running broker (Sluice or Kafka 4.1+), as\n" +
			"kafka-share-groups.sh and kafka-configs.sh --entity-type groups do.",
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&bootstrap, "bootstrap-server", "127.0.0.1:9092", "host:port of a broker to connect to")
	admin := func(cmd *cobra.Command) (*kadm.Client, context.Context, func(), error) {
		return newAdmin(cmd, bootstrap)
	}

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List every share group with its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(listFormat); err != nil {
				return err
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			groups, err := adm.ListGroupsByType(ctx, []string{"share"})
			if err != nil {
				return fmt.Errorf("list share groups on %s: %w", bootstrap, err)
			}
			if listFormat == "json" {
				out := []listedGroup{}
				for _, g := range groups.Sorted() {
					out = append(out, listedGroup{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType})
				}
				return writeJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "GROUP\tSTATE")
			for _, g := range groups.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\n", g.Group, g.State)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(list)

	var describeFormat string
	describe := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a share group's state, members with their assignments, and per-partition start offset and lag",
		Long: "Show a share group's state, epoch and members (client id, host, member epoch,\n" +
			"assignment) and, per partition it has state for, the start offset (every\n" +
			"record before it is acknowledged or archived), the log end offset (high\n" +
			"watermark) and the lag as the broker computes it (KIP-1226, DescribeShareGroupOffsets\n" +
			"v1): log end minus start offset minus the records after the start offset already\n" +
			"acknowledged or archived. Against a broker without v1 the lag is log end minus\n" +
			"start offset. A group the broker does not know exits 1.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(describeFormat); err != nil {
				return err
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := describeShareGroup(ctx, adm, args[0])
			if err != nil {
				return err
			}
			if describeFormat == "json" {
				return writeJSON(cmd.OutOrStdout(), d)
			}
			return printShareGroup(cmd.OutOrStdout(), d)
		},
	}
	describe.Flags().StringVar(&describeFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(describe)

	cmd.AddCommand(newShareResetOffsetsCommand(admin))
	cmd.AddCommand(newShareGroupConfigCommand(&bootstrap))
	cmd.AddCommand(newShareGroupAlterConfigCommand(&bootstrap))

	deleteCmd := &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a share group and the state of its partitions",
		Long: "Delete a share group without members, with its share-partition states (start\n" +
			"offsets, delivery counts). Its consumers, started again, begin from\n" +
			"share.auto.offset.reset. A group with members is refused: stop its consumers\n" +
			"first. A group the broker does not know exits 1.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			// DeleteGroups deletes any group: make sure this one is a
			// share group.
			described, err := adm.DescribeShareGroups(ctx, args[0])
			if err == nil {
				err = described[args[0]].Err
			}
			if errors.Is(err, kerr.GroupIDNotFound) {
				return fmt.Errorf("share group %s: %w", args[0], errShareGroupNotFound)
			} else if err != nil {
				return fmt.Errorf("describe share group %s: %w", args[0], err)
			}
			resp, err := adm.DeleteGroup(ctx, args[0])
			if err == nil {
				err = resp.Err
			}
			switch {
			case errors.Is(err, kerr.GroupIDNotFound):
				return fmt.Errorf("share group %s: %w", args[0], errShareGroupNotFound)
			case errors.Is(err, kerr.NonEmptyGroup):
				return fmt.Errorf("share group %s has members: stop its consumers before deleting it", args[0])
			case err != nil:
				return fmt.Errorf("delete share group %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted share group %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(deleteCmd)
	return cmd
}

// shareGroupJSON is `share-group describe --format json`, and what the
// table shows.
type shareGroupJSON struct {
	Group      string              `json:"group"`
	State      string              `json:"state"`
	GroupEpoch int32               `json:"group_epoch"`
	Assignor   string              `json:"assignor"`
	Members    []shareMemberJSON   `json:"members"`
	Partitions []sharePartitionRow `json:"partitions"`
}

// shareMemberJSON is one member; Assignment maps each topic to its
// partitions.
type shareMemberJSON struct {
	MemberID    string             `json:"member_id"`
	ClientID    string             `json:"client_id"`
	Host        string             `json:"host"`
	MemberEpoch int32              `json:"member_epoch"`
	Assignment  map[string][]int32 `json:"assignment"`
}

// sharePartitionRow is one share-partition: StartOffset null when the
// group has no state for it, LogEnd null when unknown, Lag null when
// unknown: the broker's (KIP-1226), else log end minus start offset.
type sharePartitionRow struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset *int64 `json:"start_offset"`
	LogEnd      *int64 `json:"log_end_offset"`
	Lag         *int64 `json:"lag"`
	Error       string `json:"error,omitempty"`
}

// describeShareGroup gathers a share group's description, start offsets
// and log end offsets. The partitions are those the group has state for
// and those assigned to its members.
func describeShareGroup(ctx context.Context, adm *kadm.Client, group string) (shareGroupJSON, error) {
	described, err := adm.DescribeShareGroups(ctx, group)
	if err != nil {
		return shareGroupJSON{}, fmt.Errorf("describe share group %s: %w", group, err)
	}
	g, ok := described[group]
	switch {
	case !ok:
		return shareGroupJSON{}, fmt.Errorf("share group %s: not in the broker's answer", group)
	case errors.Is(g.Err, kerr.GroupIDNotFound):
		return shareGroupJSON{}, fmt.Errorf("share group %s: %w", group, errShareGroupNotFound)
	case g.Err != nil:
		return shareGroupJSON{}, fmt.Errorf("describe share group %s: %w", group, g.Err)
	}
	out := shareGroupJSON{Group: group, State: g.GroupState, GroupEpoch: g.GroupEpoch, Assignor: g.Assignor,
		Members: []shareMemberJSON{}, Partitions: []sharePartitionRow{}}
	rows := map[string]map[int32]*sharePartitionRow{}
	row := func(topic string, p int32) *sharePartitionRow {
		if rows[topic] == nil {
			rows[topic] = map[int32]*sharePartitionRow{}
		}
		if rows[topic][p] == nil {
			rows[topic][p] = &sharePartitionRow{Topic: topic, Partition: p}
		}
		return rows[topic][p]
	}
	for _, m := range g.Members {
		mj := shareMemberJSON{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, MemberEpoch: m.MemberEpoch, Assignment: map[string][]int32{}}
		for topic, ps := range m.Assignment {
			for p := range ps {
				mj.Assignment[topic] = append(mj.Assignment[topic], p)
				row(topic, p)
			}
			slices.Sort(mj.Assignment[topic])
		}
		out.Members = append(out.Members, mj)
	}
	offsets, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		return shareGroupJSON{}, fmt.Errorf("describe start offsets of share group %s: %w", group, err)
	}
	if d := offsets[group]; d.Err != nil {
		return shareGroupJSON{}, fmt.Errorf("describe start offsets of share group %s: %w", group, d.Err)
	}
	for topic, ps := range offsets[group].Offsets {
		for p, o := range ps {
			r := row(topic, p)
			switch {
			case o.Err != nil:
				r.Error = o.Err.Error()
			case o.StartOffset >= 0:
				r.StartOffset = ptrTo(o.StartOffset)
				if o.Lag >= 0 {
					r.Lag = ptrTo(o.Lag)
				}
			}
		}
	}
	var topics []string
	for topic := range rows {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	if len(topics) > 0 {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return shareGroupJSON{}, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
		}
		for _, topic := range topics {
			for p, r := range rows[topic] {
				if e, ok := ends.Lookup(topic, p); ok && e.Err == nil {
					r.LogEnd = ptrTo(e.Offset)
					if r.StartOffset != nil && r.Lag == nil {
						// A broker without DescribeShareGroupOffsets v1:
						// records after the start offset already
						// acknowledged count too.
						r.Lag = ptrTo(max(e.Offset-*r.StartOffset, 0))
					}
				}
			}
		}
	}
	for _, topic := range topics {
		var ps []int32
		for p := range rows[topic] {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		for _, p := range ps {
			out.Partitions = append(out.Partitions, *rows[topic][p])
		}
	}
	return out, nil
}

func printShareGroup(w io.Writer, d shareGroupJSON) error {
	fmt.Fprintf(w, "group:        %s\n", d.Group)
	fmt.Fprintf(w, "state:        %s\n", d.State)
	fmt.Fprintf(w, "group-epoch:  %d\n", d.GroupEpoch)
	fmt.Fprintf(w, "assignor:     %s\n", d.Assignor)
	fmt.Fprintf(w, "members:      %d\n", len(d.Members))
	tw := newTable(w)
	if len(d.Members) > 0 {
		fmt.Fprintln(tw, "\nMEMBER-ID\tCLIENT-ID\tHOST\tEPOCH\tASSIGNMENT")
		for _, m := range d.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.MemberID, m.ClientID, m.Host, m.MemberEpoch, formatShareAssignment(m.Assignment))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART-OFFSET\tLOG-END-OFFSET\tLAG")
	opt := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	for _, r := range d.Partitions {
		start := opt(r.StartOffset)
		if r.Error != "" {
			start = "? (" + r.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Topic, r.Partition, start, opt(r.LogEnd), opt(r.Lag))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nLAG is LOG-END-OFFSET minus START-OFFSET minus the records after START-OFFSET already acknowledged or archived (KIP-1226).")
	return nil
}

// formatShareAssignment renders an assignment as "topic:0,1 other:2", or
// "-".
func formatShareAssignment(a map[string][]int32) string {
	var parts []string
	for topic, ps := range a {
		nums := make([]string, len(ps))
		for i, p := range ps {
			nums[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, topic+":"+strings.Join(nums, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// shareResetTargets are the mutually exclusive target flags of
// share-group reset-offsets (the group's, but --shift-by: a share group
// has no committed offset to shift from).
var shareResetTargets = []string{"to-earliest", "to-latest", "to-offset", "to-datetime"}

func newShareResetOffsetsCommand(admin func(*cobra.Command) (*kadm.Client, context.Context, func(), error)) *cobra.Command {
	var spec resetSpec
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC[:P,P...] (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME) [--dry-run]",
		Short: "Move a share group's start offsets",
		Long: "Move the start offset of a share group's partitions of one topic (all its\n" +
			"partitions, or those listed after a colon): records from the new start offset\n" +
			"on are delivered again, those before it never; in-flight records and delivery\n" +
			"counts are dropped. The group must have no members: stop its consumers first.\n" +
			"New offsets are clamped to the partition's [log start, log end]. The plan is\n" +
			"printed as a table; with --dry-run nothing changes. --to-datetime takes RFC\n" +
			"3339 time (2024-05-01T12:00:00Z) and moves to the first record at or after it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.set = map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) { spec.set[f.Name] = true })
			if err := spec.check(shareResetTargets); err != nil {
				return err
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			return resetShareOffsets(ctx, adm, cmd.OutOrStdout(), args[0], spec)
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.topic, "topic", "", "topic whose start offsets move: TOPIC (every partition) or TOPIC:0,2")
	spec.addTargetFlags(f)
	f.BoolVar(&spec.dryRun, "dry-run", false, "print the plan without changing anything")
	f.StringVar(&spec.format, "format", "table", "output format of the plan: table (for people) or json (for scripts)")
	return cmd
}

func resetShareOffsets(ctx context.Context, adm *kadm.Client, w io.Writer, group string, spec resetSpec) error {
	topic, partitions, err := parseTopicPartitions(spec.topic)
	if err != nil {
		return err
	}
	described, err := adm.DescribeShareGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe share group %s: %w", group, err)
	}
	if g := described[group]; g.Err == nil && len(g.Members) > 0 {
		return fmt.Errorf("share group %s has %d members: stop its consumers before resetting offsets", group, len(g.Members))
	} else if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describe share group %s: %w", group, g.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if partitions == nil {
		for p := range ends[topic] {
			partitions = append(partitions, p)
		}
		slices.Sort(partitions)
	}
	var byTime kadm.ListedOffsets
	if spec.set["to-datetime"] {
		at, _ := time.Parse(time.RFC3339Nano, spec.toDatetime) // checked
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic); err != nil {
			return fmt.Errorf("list offsets of %s after %s: %w", topic, spec.toDatetime, err)
		}
	}
	current := map[int32]int64{}
	if offsets, err := adm.DescribeShareGroupOffsets(ctx, group); err == nil {
		for p, o := range offsets[group].Offsets[topic] {
			if o.Err == nil && o.StartOffset >= 0 {
				current[p] = o.StartOffset
			}
		}
	}
	var plan []resetPlanRow
	alter := make(kadm.Offsets)
	for _, p := range partitions {
		start, okStart := starts.Lookup(topic, p)
		end, okEnd := ends.Lookup(topic, p)
		if !okStart || !okEnd || start.Err != nil || end.Err != nil {
			return fmt.Errorf("topic %s has no partition %d", topic, p)
		}
		r := resetPlanRow{partition: p, current: -1}
		if c, ok := current[p]; ok {
			r.current = c
		}
		switch {
		case spec.toEarliest:
			r.next = start.Offset
		case spec.toLatest:
			r.next = end.Offset
		case spec.set["to-offset"]:
			r.next = spec.toOffset
		case spec.set["to-datetime"]:
			r.next = end.Offset // no record at or after the time
			if o, ok := byTime.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
				r.next = o.Offset
			}
		}
		r.next = min(max(r.next, start.Offset), end.Offset)
		plan = append(plan, r)
		alter.Add(kadm.Offset{Topic: topic, Partition: p, At: r.next, LeaderEpoch: -1})
	}
	apply := func() error {
		resps, err := adm.AlterShareGroupOffsets(ctx, group, alter)
		switch {
		case errors.Is(err, kerr.NonEmptyGroup):
			return fmt.Errorf("share group %s has members: stop its consumers before resetting offsets", group)
		case err != nil:
			return fmt.Errorf("alter start offsets of share group %s: %w", group, err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("alter start offsets of share group %s: %w", group, err)
		}
		return nil
	}
	if spec.format == "json" {
		done := false
		if !spec.dryRun {
			if err := apply(); err != nil {
				return err
			}
			done = true
		}
		return writeJSON(w, resetPlanJSON(group, topic, plan, done))
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-START-OFFSET\tNEW-START-OFFSET")
	for _, r := range plan {
		cur := "-"
		if r.current >= 0 {
			cur = strconv.FormatInt(r.current, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", topic, r.partition, cur, r.next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if spec.dryRun {
		fmt.Fprintln(w, "dry run: nothing changed")
		return nil
	}
	if err := apply(); err != nil {
		return err
	}
	fmt.Fprintf(w, "reset %d start offsets of share group %s\n", len(plan), group)
	return nil
}
