package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// movePoll is how often a running plan asks the controller for the
// reassignments still in progress.
const movePoll = 500 * time.Millisecond

// planOptions are the flags every placement-changing verb shares.
type planOptions struct {
	dryRun  bool
	format  string
	timeout time.Duration
}

func (o *planOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().StringVar(&o.format, "format", "table", "plan output format: table (for people) or json (for scripts)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the moves to finish")
}

func (o *planOptions) validate() error {
	if o.format != "table" && o.format != "json" {
		return fmt.Errorf("--format %q is neither table nor json", o.format)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", o.timeout)
	}
	return nil
}

const planExitCodes = "Exit status: 0 when done (or nothing to do, or --dry-run); 1 when the\n" +
	"cluster cannot be reached, refuses the plan, or the moves do not finish\n" +
	"within --timeout (they go on in the background; `sluice cluster status`\n" +
	"shows them)."

func newClusterRebalanceCommand(bootstrap *string) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Spread replicas and preferred leaders evenly over the nodes, and move them there",
		Long: "Plan a placement in which every node holds the same number of replicas and\n" +
			"is preferred leader of the same number of partitions (within one), moving as\n" +
			"few replicas as it can; show it; then move the replicas while producers keep\n" +
			"writing (AlterPartitionReassignments), wait for the moves with progress on\n" +
			"stderr, and elect the preferred leaders (ElectLeaders).\n\n" + planExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			c, err := dialCluster(cmd.Context(), *bootstrap)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer c.close()
			return c.run(cmd, c.nodes, opts)
		},
	}
	opts.register(cmd)
	return cmd
}

func newClusterAddNodeCommand(bootstrap *string) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "add-node ID",
		Short: "Wait for a node that joins the cluster, then rebalance replicas onto it",
		Long: "Start the new node with cluster.join set to any member's Kafka address (and\n" +
			"its own node.id and raft.listen); it asks the controller to add it. This\n" +
			"command waits (within --timeout) until node ID is a member, then plans and\n" +
			"runs a rebalance that gives it its share of replicas and leaders.\n\n" + planExitCodes,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseNodeID(args[0])
			if err != nil {
				return err
			}
			if err := opts.validate(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
			defer cancel()
			for {
				c, err := dialCluster(ctx, *bootstrap)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if slices.Contains(c.nodes, id) {
					defer c.close()
					fmt.Fprintf(cmd.ErrOrStderr(), "node %d is a member\n", id)
					return c.run(cmd, c.nodes, opts)
				}
				c.close()
				select {
				case <-time.After(movePoll):
				case <-ctx.Done():
					return &exitError{code: 1, err: fmt.Errorf("node %d did not join within %s; start it with cluster.join=%s", id, opts.timeout, *bootstrap)}
				}
			}
		},
	}
	opts.register(cmd)
	return cmd
}

func newClusterRemoveNodeCommand(bootstrap *string) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "remove-node ID",
		Short: "Move a node's replicas to the other nodes, then remove it from the cluster",
		Long: "Plan a placement on every node but ID (balanced as rebalance does), move the\n" +
			"replicas while producers keep writing, then remove the node from the\n" +
			"metadata group (UnregisterBroker). Refused, with nothing changed, when the\n" +
			"other nodes are fewer than a partition's replication factor. The removed\n" +
			"node's process may then be stopped.\n\n" + planExitCodes,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseNodeID(args[0])
			if err != nil {
				return err
			}
			if err := opts.validate(); err != nil {
				return err
			}
			c, err := dialCluster(cmd.Context(), *bootstrap)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer c.close()
			if !slices.Contains(c.nodes, id) {
				return &exitError{code: 1, err: fmt.Errorf("node %d is not a member of the cluster (members: %s)", id, formatNodes(c.nodes))}
			}
			rest := slices.DeleteFunc(slices.Clone(c.nodes), func(n int32) bool { return n == id })
			for _, p := range c.parts {
				if len(p.Replicas) > len(rest) {
					return &exitError{code: 1, err: fmt.Errorf("cannot remove node %d: partition %s-%d has %d replicas and only %d nodes would remain; lower its replication factor or add a node first",
						id, p.Topic, p.Partition, len(p.Replicas), len(rest))}
				}
			}
			if err := c.run(cmd, rest, opts); err != nil || opts.dryRun {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
			defer cancel()
			req := kmsg.NewPtrUnregisterBrokerRequest()
			req.BrokerID = id
			var last error
			for ctx.Err() == nil {
				// To the controller, which alone answers it.
				var resp *kmsg.UnregisterBrokerResponse
				md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c.client)
				if err == nil {
					resp, err = req.RequestWith(ctx, c.client.Broker(int(md.ControllerID)))
				}
				if err == nil {
					err = kerr.ErrorForCode(resp.ErrorCode)
					if err != nil && resp.ErrorMessage != nil {
						err = fmt.Errorf("%s: %w", *resp.ErrorMessage, err)
					}
				}
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "node %d removed from the cluster; its process may be stopped\n", id)
					return nil
				}
				last = err
				if !errors.Is(err, kerr.NotController) {
					break
				}
				select { // a new controller is being elected
				case <-time.After(movePoll):
				case <-ctx.Done():
				}
			}
			return &exitError{code: 1, err: fmt.Errorf("remove node %d from the metadata group: %w", id, last)}
		},
	}
	opts.register(cmd)
	return cmd
}

// parseNodeID parses a node id argument.
func parseNodeID(s string) (int32, error) {
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("node id %q is not a non-negative integer", s)
	}
	return int32(id), nil
}

// clusterPlacement is a connection to a cluster and its placement: the
// member nodes and every partition's replicas.
type clusterPlacement struct {
	client *kgo.Client
	admin  *kadm.Client
	nodes  []int32
	parts  []placement
}

// dialCluster connects to the cluster at bootstrap and reads its nodes
// and partitions from the controller, whose view holds every committed
// change (another node's copy of the metadata may lag it by moments, and
// show a reassignment the controller just finalised as still running).
// A partition being reassigned is placed at its target: the replicas
// being removed are already on their way out.
func dialCluster(ctx context.Context, bootstrap string) (*clusterPlacement, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.MetadataMinAge(movePoll))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	c := &clusterPlacement{client: cl, admin: kadm.NewClient(cl)}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := c.controllerMetadata(mctx)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot reach the cluster at %s: %w", bootstrap, err)
	}
	moving, err := c.reassigning(mctx)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("list the reassignments in progress: %w", err)
	}
	for _, b := range md.Brokers {
		c.nodes = append(c.nodes, b.NodeID)
	}
	slices.Sort(c.nodes)
	for _, t := range md.Topics {
		if t.ErrorCode != 0 || t.Topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			replicas := p.Replicas
			if target, ok := moving[*t.Topic][p.Partition]; ok {
				replicas = target
			}
			c.parts = append(c.parts, placement{Topic: *t.Topic, Partition: p.Partition, Replicas: replicas})
		}
	}
	slices.SortFunc(c.parts, func(a, b placement) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition) - int(b.Partition)
	})
	return c, nil
}

// reassigning returns the target replicas of every partition being
// reassigned, by topic and partition (ListPartitionReassignments of all
// partitions, which the client sends to the controller).
func (c *clusterPlacement) reassigning(ctx context.Context) (map[string]map[int32][]int32, error) {
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, c.client)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	out := map[string]map[int32][]int32{}
	for _, t := range resp.Topics {
		out[t.Topic] = map[int32][]int32{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = slices.DeleteFunc(slices.Clone(p.Replicas), func(n int32) bool { return slices.Contains(p.RemovingReplicas, n) })
		}
	}
	return out, nil
}

// placedAt reports whether the controller's metadata, which clients
// read, lists every moved partition with exactly its target replicas:
// the reassignment is finalised in the controller's state a moment
// before its metadata view shows it.
func (c *clusterPlacement) placedAt(ctx context.Context, moves []move) bool {
	md, err := c.controllerMetadata(ctx)
	if err != nil {
		return false
	}
	have := map[string]map[int32][]int32{}
	for _, t := range md.Topics {
		if t.Topic == nil {
			continue
		}
		have[*t.Topic] = map[int32][]int32{}
		for _, p := range t.Partitions {
			have[*t.Topic][p.Partition] = p.Replicas
		}
	}
	for _, m := range moves {
		if !slices.Equal(have[m.Topic][m.Partition], m.To) {
			return false
		}
	}
	return true
}

// controllerMetadata asks any broker which node is the controller, then
// asks the controller for the metadata of every topic. It falls back to
// the first answer when the controller cannot be asked.
func (c *clusterPlacement) controllerMetadata(ctx context.Context) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	any, err := req.RequestWith(ctx, c.client)
	if err != nil {
		return nil, err
	}
	if any.ControllerID < 0 {
		return any, nil
	}
	if md, err := req.RequestWith(ctx, c.client.Broker(int(any.ControllerID))); err == nil {
		return md, nil
	}
	return any, nil
}

func (c *clusterPlacement) close() { c.client.Close() }

// run plans a balanced placement on nodes, prints it, and unless
// dry-run moves the replicas, waits for them and elects the preferred
// leaders.
func (c *clusterPlacement) run(cmd *cobra.Command, nodes []int32, opts planOptions) error {
	moves := planBalance(nodes, c.parts)
	if err := printPlan(cmd.OutOrStdout(), moves, opts.format); err != nil {
		return err
	}
	if opts.dryRun || len(moves) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
	defer cancel()
	if err := c.execute(ctx, cmd.ErrOrStderr(), moves); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}

// printPlan writes the moves as a table or a JSON array.
func printPlan(w io.Writer, moves []move, format string) error {
	if format == "json" {
		if moves == nil {
			moves = []move{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(moves)
	}
	if len(moves) == 0 {
		fmt.Fprintln(w, "the placement is balanced: nothing to move")
		return nil
	}
	fmt.Fprintf(w, "%d partition(s) to change (replicas in preference order, leader first):\n", len(moves))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tFROM\tTO")
	for _, m := range moves {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", m.Topic, m.Partition, orderedNodes(m.From), orderedNodes(m.To))
	}
	return tw.Flush()
}

// orderedNodes renders node ids in their order as "1,2,3".
func orderedNodes(ids []int32) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(int(id))
	}
	return s
}

// execute asks the controller to move the partitions, waits until none
// of them is being reassigned (progress on progress), then elects their
// preferred leaders.
func (c *clusterPlacement) execute(ctx context.Context, progress io.Writer, moves []move) error {
	var req kadm.AlterPartitionAssignmentsReq
	set := kadm.TopicsSet{}
	for _, m := range moves {
		req.Assign(m.Topic, m.Partition, m.To)
		set.Add(m.Topic, m.Partition)
	}
	resps, err := c.admin.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("AlterPartitionReassignments: %w", err)
	}
	for _, t := range resps {
		for _, r := range t {
			if r.Err != nil {
				msg := r.ErrMessage
				if msg == "" {
					msg = r.Err.Error()
				}
				return fmt.Errorf("the controller refused to move %s-%d: %s", r.Topic, r.Partition, msg)
			}
		}
	}
	fmt.Fprintf(progress, "moving %d partition(s)\n", len(moves))
	lastLeft := -1
	for {
		listed, err := c.admin.ListPartitionReassignments(ctx, set)
		left := 0
		if err == nil {
			listed.Each(func(kadm.ListPartitionReassignmentsResponse) { left++ })
			if left != lastLeft {
				fmt.Fprintf(progress, "moved %d of %d\n", len(moves)-left, len(moves))
				lastLeft = left
			}
			if left == 0 && c.placedAt(ctx, moves) {
				break
			}
		}
		select {
		case <-time.After(movePoll):
		case <-ctx.Done():
			return fmt.Errorf("%d of %d partition(s) still moving when the timeout ended; they go on in the background (last error: %v)", left, len(moves), err)
		}
	}
	// The moves put each partition's preferred leader first; hand them
	// leadership (ELECTION_NOT_NEEDED where it has it already).
	for {
		res, err := c.admin.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
		pending := 0
		if err == nil {
			for _, t := range res {
				for _, r := range t {
					if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
						pending++
					}
				}
			}
			if pending == 0 {
				fmt.Fprintln(progress, "preferred leaders elected")
				return nil
			}
		}
		select {
		case <-time.After(movePoll):
		case <-ctx.Done():
			return fmt.Errorf("replicas moved, but %d preferred leader(s) not elected within the timeout (automatic restore will retry; last error: %v)", pending, err)
		}
	}
}
