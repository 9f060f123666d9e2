package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupCommand() *cobra.Command {
	var bootstrap string
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, show the lag of, reset the offsets of and dead-letter records of consumer groups",
		Long: "List, describe and reset the offsets of consumer groups on a running broker\n" +
			"(Sluice or Kafka), as kafka-consumer-groups.sh does.",
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&bootstrap, "bootstrap-server", "127.0.0.1:9092", "host:port of a broker to connect to")
	var adminAddr string
	cmd.PersistentFlags().StringVar(&adminAddr, "admin", "127.0.0.1:9644", "host:port of the broker's admin listener (admin.listen), asked by describe which partitions the group is stuck on; empty: do not ask")
	admin := func(cmd *cobra.Command) (*kadm.Client, context.Context, func(), error) {
		return newAdmin(cmd, bootstrap)
	}

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List every consumer group with its state",
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
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("list groups on %s: %w", bootstrap, err)
			}
			return printGroupList(cmd.OutOrStdout(), groups, listFormat)
		},
	}
	list.Flags().StringVar(&listFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(list)

	var describeFormat string
	describe := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's state, members and per-partition offsets and lag",
		Long: "Show a group's state, protocol and members (client id, host, assignment)\n" +
			"and, per partition, its committed offset, log end offset, lag and time lag\n" +
			"(see group lag). A group the broker does not know exits 1.",
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
			lags, err := adm.Lag(ctx, args[0])
			if err != nil {
				return fmt.Errorf("describe group %s on %s: %w", args[0], bootstrap, err)
			}
			lag, ok := lags[args[0]]
			switch {
			case !ok:
				return fmt.Errorf("group %s: not in the broker's answer", args[0])
			case lag.Error() != nil:
				return fmt.Errorf("describe group %s: %w", args[0], lag.Error())
			case lag.State == "Dead" && len(lag.Members) == 0 && len(lag.Lag) == 0:
				return fmt.Errorf("group %s: %w", args[0], errGroupNotFound)
			}
			lr := lagRows(lag)
			if err := addTimeLags(ctx, bootstrap, lr, time.Now()); err != nil {
				return err
			}
			stuck, stuckErr := fetchStuck(ctx, adminAddr, args[0])
			rows := describeRows(lr, stuck, stuckErr)
			if describeFormat == "json" {
				return writeJSON(cmd.OutOrStdout(), describedGroupJSON(lag, rows, stuckErr))
			}
			return printGroupDescription(cmd.OutOrStdout(), lag, rows, stuckErr)
		},
	}
	describe.Flags().StringVar(&describeFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(describe)

	cmd.AddCommand(newGroupLagCommand(admin, &bootstrap))
	cmd.AddCommand(newResetOffsetsCommand(admin))
	cmd.AddCommand(newDeadLetterCommand(admin, &bootstrap))
	return cmd
}

// listedGroup is one group of `group list --format json`.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
}

func printGroupList(w io.Writer, groups kadm.ListedGroups, format string) error {
	if format == "json" {
		out := []listedGroup{}
		for _, g := range groups.Sorted() {
			out = append(out, listedGroup{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType})
		}
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
	for _, g := range groups.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, g.ProtocolType)
	}
	return tw.Flush()
}

// printGroupDescription writes the group's state and members, then rows
// (its lag per partition, see lagRows).
// A STUCK column says which partitions the broker reports the group stuck
// on; stuckErr, when not nil, says why that is unknown.
func printGroupDescription(w io.Writer, g kadm.DescribedGroupLag, rows []describeRow, stuckErr error) error {
	fmt.Fprintf(w, "group:          %s\n", g.Group)
	fmt.Fprintf(w, "state:          %s\n", g.State)
	fmt.Fprintf(w, "protocol-type:  %s\n", g.ProtocolType)
	fmt.Fprintf(w, "protocol:       %s\n", g.Protocol)
	fmt.Fprintf(w, "members:        %d\n", len(g.Members))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(g.Members) > 0 {
		fmt.Fprintln(tw, "\nMEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range g.Members {
			instance := "-"
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, instance, m.ClientID, m.ClientHost, formatAssignment(m.Assigned))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printDescribeTable(w, rows); err != nil {
		return err
	}
	if stuckErr != nil {
		fmt.Fprintf(w, "\nstuck state unknown (STUCK ?): %v\n", stuckErr)
	}
	return nil
}

// groupJSON is `group describe --format json`.
type groupJSON struct {
	Group        string        `json:"group"`
	State        string        `json:"state"`
	ProtocolType string        `json:"protocol_type"`
	Protocol     string        `json:"protocol"`
	Members      []memberJSON  `json:"members"`
	Partitions   []describeRow `json:"partitions"`
	// StuckUnknown says why the partitions' stuck state is null.
	StuckUnknown string `json:"stuck_unknown,omitempty"`
}

// memberJSON is one member of groupJSON; Assignment maps each topic to
// its partitions.
type memberJSON struct {
	MemberID   string             `json:"member_id"`
	InstanceID *string            `json:"instance_id"`
	ClientID   string             `json:"client_id"`
	Host       string             `json:"host"`
	Assignment map[string][]int32 `json:"assignment"`
}

func describedGroupJSON(g kadm.DescribedGroupLag, rows []describeRow, stuckErr error) groupJSON {
	out := groupJSON{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
		Members: []memberJSON{}, Partitions: rows}
	if out.Partitions == nil {
		out.Partitions = []describeRow{}
	}
	if stuckErr != nil {
		out.StuckUnknown = stuckErr.Error()
	}
	for _, m := range g.Members {
		mj := memberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: map[string][]int32{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				mj.Assignment[t.Topic] = ps
			}
		}
		out.Members = append(out.Members, mj)
	}
	return out
}

// formatAssignment renders a consumer member's assignment as
// "topic:0,1 other:2", or "-".
func formatAssignment(a kadm.GroupMemberAssignment) string {
	c, ok := a.AsConsumer()
	if !ok || len(c.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range c.Topics {
		ps := slices.Clone(t.Partitions)
		slices.Sort(ps)
		nums := make([]string, len(ps))
		for i, p := range ps {
			nums[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t.Topic+":"+strings.Join(nums, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// resetSpec is what group or share-group reset-offsets was asked to do;
// exactly one target is set (share groups have no --shift-by).
type resetSpec struct {
	toEarliest, toLatest bool
	toOffset             int64
	toDatetime           string
	shiftBy              int64
	dryRun               bool
	topic                string
	format               string
	// set records which of the flags were given, by name.
	set map[string]bool
}

func newResetOffsetsCommand(admin func(*cobra.Command) (*kadm.Client, context.Context, func(), error)) *cobra.Command {
	var spec resetSpec
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC[:P,P...] (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME | --shift-by N) [--dry-run]",
		Short: "Move a group's committed offsets",
		Long: "Move a group's committed offsets of one topic (all its partitions, or those\n" +
			"listed after a colon). The group must have no active members (state Empty or\n" +
			"Dead): stop its consumers first. New offsets are clamped to the partition's\n" +
			"[log start, log end], as Kafka does. The plan is printed as a table; with\n" +
			"--dry-run nothing is committed. --to-datetime takes RFC 3339 time\n" +
			"(2024-05-01T12:00:00Z) and moves to the first record at or after it.\n" +
			"--format json prints the plan as one object, after committing it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.set = map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) { spec.set[f.Name] = true })
			if err := spec.check(resetTargets); err != nil {
				return err
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			return resetOffsets(ctx, adm, cmd.OutOrStdout(), args[0], spec)
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.topic, "topic", "", "topic whose offsets move: TOPIC (every partition) or TOPIC:0,2")
	spec.addTargetFlags(f)
	f.Int64Var(&spec.shiftBy, "shift-by", 0, "move by this many offsets (negative: back) from the committed offset")
	f.BoolVar(&spec.dryRun, "dry-run", false, "print the plan without committing it")
	f.StringVar(&spec.format, "format", "table", "output format of the plan: table (for people) or json (for scripts)")
	return cmd
}

// resetTargets are the mutually exclusive target flags of group
// reset-offsets.
var resetTargets = []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"}

// addTargetFlags registers the target flags group and share-group
// reset-offsets share: --to-earliest, --to-latest, --to-offset,
// --to-datetime.
func (s *resetSpec) addTargetFlags(f *pflag.FlagSet) {
	f.BoolVar(&s.toEarliest, "to-earliest", false, "move to the log start offset")
	f.BoolVar(&s.toLatest, "to-latest", false, "move to the log end offset")
	f.Int64Var(&s.toOffset, "to-offset", 0, "move to this offset")
	f.StringVar(&s.toDatetime, "to-datetime", "", "move to the first record at or after this RFC 3339 time")
}

// check validates the flags given: exactly one of targets, a topic, a
// parseable --to-datetime and a known --format.
func (s resetSpec) check(targets []string) error {
	var given []string
	for _, name := range targets {
		if s.set[name] {
			given = append(given, "--"+name)
		}
	}
	if err := checkFormat(s.format); err != nil {
		return err
	}
	if len(given) != 1 {
		return usageErrorf("give exactly one of --%s (got %d: %s)", strings.Join(targets, ", --"), len(given), strings.Join(given, " "))
	}
	if s.topic == "" {
		return usageErrorf("--topic is required")
	}
	if s.set["to-datetime"] {
		if _, err := time.Parse(time.RFC3339Nano, s.toDatetime); err != nil {
			return usageErrorf("--to-datetime %q is not RFC 3339 time such as 2024-05-01T12:00:00Z: %w", s.toDatetime, err)
		}
	}
	return nil
}

// parseTopicPartitions splits "T" or "T:0,2" into the topic and its
// partitions (nil: all).
func parseTopicPartitions(arg string) (string, []int32, error) {
	topic, list, hasList := strings.Cut(arg, ":")
	if topic == "" {
		return "", nil, usageErrorf("--topic %q names no topic", arg)
	}
	if !hasList {
		return topic, nil, nil
	}
	var partitions []int32
	for _, s := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		if err != nil || p < 0 {
			return "", nil, usageErrorf("--topic %q: %q is not a partition number", arg, s)
		}
		partitions = append(partitions, int32(p))
	}
	return topic, partitions, nil
}

// resetPlanRow is one partition's move.
type resetPlanRow struct {
	partition int32
	current   int64 // -1: nothing committed
	next      int64
}

func resetOffsets(ctx context.Context, adm *kadm.Client, w io.Writer, group string, spec resetSpec) error {
	topic, partitions, err := parseTopicPartitions(spec.topic)
	if err != nil {
		return err
	}

	if err := requireNoMembers(ctx, adm, group, "resetting offsets"); err != nil {
		return err
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
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}

	var plan []resetPlanRow
	commit := make(kadm.Offsets)
	for _, p := range partitions {
		start, okStart := starts.Lookup(topic, p)
		end, okEnd := ends.Lookup(topic, p)
		if !okStart || !okEnd || start.Err != nil || end.Err != nil {
			return fmt.Errorf("topic %s has no partition %d", topic, p)
		}
		row := resetPlanRow{partition: p, current: -1}
		if c, ok := committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
			row.current = c.At
		}
		switch {
		case spec.toEarliest:
			row.next = start.Offset
		case spec.toLatest:
			row.next = end.Offset
		case spec.set["to-offset"]:
			row.next = spec.toOffset
		case spec.set["to-datetime"]:
			row.next = end.Offset // no record at or after the time
			if o, ok := byTime.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
				row.next = o.Offset
			}
		case spec.set["shift-by"]:
			if row.current < 0 {
				return fmt.Errorf("group %s has no committed offset on %s-%d to shift from; use --to-offset, --to-earliest or --to-latest", group, topic, p)
			}
			row.next = row.current + spec.shiftBy
		}
		row.next = min(max(row.next, start.Offset), end.Offset)
		plan = append(plan, row)
		commit.Add(kadm.Offset{Topic: topic, Partition: p, At: row.next, LeaderEpoch: -1})
	}

	if spec.format == "json" {
		committed := false
		if !spec.dryRun {
			if err := commitPlan(ctx, adm, group, commit); err != nil {
				return err
			}
			committed = true
		}
		return writeJSON(w, resetPlanJSON(group, topic, plan, committed))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, r := range plan {
		current := "-"
		if r.current >= 0 {
			current = strconv.FormatInt(r.current, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", topic, r.partition, current, r.next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if spec.dryRun {
		fmt.Fprintln(w, "dry run: nothing committed")
		return nil
	}
	if err := commitPlan(ctx, adm, group, commit); err != nil {
		return err
	}
	fmt.Fprintf(w, "committed %d offsets of group %s\n", len(plan), group)
	return nil
}

// requireNoMembers fails unless group has no active members (state Empty
// or Dead): the broker accepts offset commits without a generation only
// then. doing names what is refused.
func requireNoMembers(ctx context.Context, adm *kadm.Client, group, doing string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	g := described[group]
	if g.Err != nil {
		return fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	if g.State != "Empty" && g.State != "Dead" {
		return fmt.Errorf("group %s has active members (state %s, %d members): stop its consumers before %s", group, g.State, len(g.Members), doing)
	}
	return nil
}

// commitPlan commits the offsets of a reset plan.
func commitPlan(ctx context.Context, adm *kadm.Client, group string, commit kadm.Offsets) error {
	resps, err := adm.CommitOffsets(ctx, group, commit)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	if err := resps.Error(); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// resetJSON is `group reset-offsets --format json`: the plan and whether
// it was committed (false with --dry-run).
type resetJSON struct {
	Group      string         `json:"group"`
	Topic      string         `json:"topic"`
	Committed  bool           `json:"committed"`
	Partitions []resetRowJSON `json:"partitions"`
}

// resetRowJSON is one partition of resetJSON; CurrentOffset is null when
// the group had committed nothing.
type resetRowJSON struct {
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"current_offset"`
	NewOffset     int64  `json:"new_offset"`
}

func resetPlanJSON(group, topic string, plan []resetPlanRow, committed bool) resetJSON {
	out := resetJSON{Group: group, Topic: topic, Committed: committed, Partitions: []resetRowJSON{}}
	for _, r := range plan {
		row := resetRowJSON{Partition: r.partition, NewOffset: r.next}
		if r.current >= 0 {
			row.CurrentOffset = ptrTo(r.current)
		}
		out.Partitions = append(out.Partitions, row)
	}
	return out
}
