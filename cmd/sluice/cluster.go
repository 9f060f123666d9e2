package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// exitUnhealthy is the exit code of `sluice cluster status` when a node
// does not answer, or partitions are under-replicated or leaderless.
const exitUnhealthy = 3

func newClusterCommand() *cobra.Command {
	var bootstrap string
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show a cluster's health; add, remove and rebalance nodes",
		Args:  cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&bootstrap, "bootstrap-server", "127.0.0.1:9092", "host:port of a broker to connect to")
	cmd.AddCommand(newClusterStatusCommand(&bootstrap), newClusterRebalanceCommand(&bootstrap),
		newClusterAddNodeCommand(&bootstrap), newClusterRemoveNodeCommand(&bootstrap))
	return cmd
}

func newClusterStatusCommand(bootstrap *string) *cobra.Command {
	var (
		format  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show nodes and their health and storage, leaders per node, under-replicated and leaderless partitions",
		Long: "Show the cluster's nodes (address, whether each answers, the controller, the\n" +
			"partitions each leads, its data, its free disk space against\n" +
			"storage.min.free.bytes and whether it refuses produce for lack of it), and\n" +
			"the partitions that are under-replicated (fewer in-sync replicas than\n" +
			"replicas, as their leader sees them) or leaderless (no node that answers\n" +
			"leads them). Every node is asked directly, so the view of each partition is\n" +
			"its leader's and each node's storage its own (DescribeLogDirs).\n\n" +
			"Exit status: 0 when healthy; 1 when the bootstrap broker cannot be reached;\n" +
			"2 on a usage error; 3 when a node does not answer or refuses produce for\n" +
			"lack of disk space, or a partition is under-replicated or leaderless.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %s must be positive", timeout)
			}
			st, err := clusterStatus(cmd.Context(), *bootstrap, timeout)
			if err != nil {
				return err
			}
			if err := printClusterStatus(cmd.OutOrStdout(), st, format); err != nil {
				return err
			}
			if !st.Healthy {
				return &exitError{code: exitUnhealthy}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the bootstrap broker, and for each node's answer")
	return cmd
}

// clusterState is what `cluster status` reports; it is also the JSON
// output.
type clusterState struct {
	ClusterID  string      `json:"cluster_id"`
	Controller int32       `json:"controller"`
	Nodes      []nodeState `json:"nodes"`
	Partitions int         `json:"partitions"`
	// UnderReplicated and Leaderless are never null in JSON.
	UnderReplicated []partitionState `json:"under_replicated"`
	Leaderless      []partitionState `json:"leaderless"`
	// Moving are the partitions being reassigned (never null in JSON).
	Moving  []movingPartition `json:"moving"`
	Healthy bool              `json:"healthy"`
}

// movingPartition is a reassignment in progress, as
// ListPartitionReassignments reports it.
type movingPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

// nodeState is one node: whether it answered a Metadata request directly,
// and how many partitions it leads and holds.
type nodeState struct {
	ID      int32  `json:"id"`
	Address string `json:"address"`
	Up      bool   `json:"up"`
	// Error says why a node that is not up did not answer.
	Error      string `json:"error,omitempty"`
	Controller bool   `json:"controller"`
	Leaders    int    `json:"leaders"`
	Replicas   int    `json:"replicas"`
	// Storage is the node's log directory and free space (absent when it
	// did not say); StorageError says why not.
	Storage      *nodeStorage `json:"storage,omitempty"`
	StorageError string       `json:"storage_error,omitempty"`
}

// partitionState is one partition as its leader (or, without one, the
// bootstrap broker) sees it. Leader is -1 when no node that answers leads
// it.
type partitionState struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Epoch     int32   `json:"leader_epoch"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
}

// partitionKey names a partition.
type partitionKey struct {
	topic     string
	partition int32
}

// clusterStatus asks the bootstrap broker for the brokers, the controller
// and the partitions, then asks every broker for its own view, in
// parallel, each within timeout. The error is the bootstrap broker's: the
// cluster cannot be reached.
func clusterStatus(ctx context.Context, bootstrap string, timeout time.Duration) (*clusterState, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DialTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	defer cl.Close()
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Metadata through kadm populates the client's brokers, so that each
	// can be asked directly below.
	md, err := kadm.NewClient(cl).Metadata(bctx)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the cluster at %s: %w", bootstrap, err)
	}
	st := &clusterState{ClusterID: md.Cluster, Controller: md.Controller, UnderReplicated: []partitionState{}, Leaderless: []partitionState{}, Moving: []movingPartition{}}
	// DescribeCluster is the admin API for brokers and controller; a broker
	// without it (Kafka before 2.8) is described by Metadata alone.
	// Metadata lists only live brokers: a node held down (fenced) is named
	// by DescribeCluster with IncludeFencedBrokers (v2+), and shown down.
	brokers := md.Brokers
	fenced := map[int32]bool{}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	if dc, err := dreq.RequestWith(bctx, cl); err == nil && dc.ErrorCode == 0 {
		st.ClusterID, st.Controller = dc.ClusterID, dc.ControllerID
		for _, b := range dc.Brokers {
			if !slices.ContainsFunc(brokers, func(mb kadm.BrokerDetail) bool { return mb.NodeID == b.NodeID }) {
				brokers = append(brokers, kadm.BrokerDetail{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
				fenced[b.NodeID] = true
			}
		}
	}
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].NodeID < brokers[j].NodeID })
	views := make([]*kmsg.MetadataResponse, len(brokers))
	errs := make([]error, len(brokers))
	storage := make([]*nodeStorage, len(brokers))
	storageErrs := make([]error, len(brokers))
	adm := kadm.NewClient(cl)
	var wg sync.WaitGroup
	for i, b := range brokers {
		if fenced[b.NodeID] {
			errs[i] = fmt.Errorf("node %d is fenced: the cluster's failure detector holds it down", b.NodeID)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			req := kmsg.NewPtrMetadataRequest() // all topics
			resp, err := cl.Broker(int(b.NodeID)).Request(nctx, req)
			if err != nil {
				errs[i] = err
				return
			}
			views[i] = resp.(*kmsg.MetadataResponse)
			storage[i], storageErrs[i] = describeNodeStorage(nctx, adm, b.NodeID)
		}()
	}
	wg.Wait()

	up := map[int32]bool{}
	for i, b := range brokers {
		n := nodeState{ID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), Up: views[i] != nil, Controller: b.NodeID == st.Controller}
		if errs[i] != nil {
			n.Error = errs[i].Error()
		}
		n.Storage = storage[i]
		if storageErrs[i] != nil {
			n.StorageError = storageErrs[i].Error()
		}
		up[b.NodeID] = n.Up
		st.Nodes = append(st.Nodes, n)
	}

	// Each partition as its leader sees it: a node that answers and names
	// itself the leader (the highest epoch, should two claim it). The
	// bootstrap broker's view stands in for a partition none leads.
	leaderViews := map[partitionKey]partitionState{}
	for i, v := range views {
		if v == nil {
			continue
		}
		self := brokers[i].NodeID
		for _, t := range v.Topics {
			if t.Topic == nil || t.ErrorCode != 0 {
				continue
			}
			for _, p := range t.Partitions {
				if p.Leader != self {
					continue
				}
				k := partitionKey{*t.Topic, p.Partition}
				if have, ok := leaderViews[k]; ok && have.Epoch >= p.LeaderEpoch {
					continue
				}
				leaderViews[k] = partitionState{Topic: *t.Topic, Partition: p.Partition, Leader: p.Leader, Epoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR}
			}
		}
	}
	// Reassignments in progress (the controller's list; a broker without
	// the API lists none). A replica being added is not expected in the
	// ISR yet: such a partition is moving, not under-replicated.
	adding := map[partitionKey]int{}
	all := kadm.TopicsSet{}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			all.Add(t.Topic, p.Partition)
		}
	}
	lctx, lcancel := context.WithTimeout(ctx, timeout)
	defer lcancel()
	if moving, err := kadm.NewClient(cl).ListPartitionReassignments(lctx, all); err == nil {
		for _, r := range moving.Sorted() {
			st.Moving = append(st.Moving, movingPartition{Topic: r.Topic, Partition: r.Partition, Replicas: r.Replicas, Adding: r.AddingReplicas, Removing: r.RemovingReplicas})
			adding[partitionKey{r.Topic, r.Partition}] = len(r.AddingReplicas)
		}
	}
	replicasOf := map[int32]int{}
	leadersOf := map[int32]int{}
	for _, t := range md.Topics.Sorted() {
		if t.Err != nil {
			continue
		}
		for _, p := range t.Partitions.Sorted() {
			st.Partitions++
			ps, ok := leaderViews[partitionKey{t.Topic, p.Partition}]
			if !ok {
				ps = partitionState{Topic: t.Topic, Partition: p.Partition, Leader: -1, Epoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR}
			}
			for _, r := range ps.Replicas {
				replicasOf[r]++
			}
			switch {
			case !ok:
				st.Leaderless = append(st.Leaderless, ps)
			case len(ps.ISR) < len(ps.Replicas)-adding[partitionKey{t.Topic, p.Partition}]:
				leadersOf[ps.Leader]++
				st.UnderReplicated = append(st.UnderReplicated, ps)
			default:
				leadersOf[ps.Leader]++
			}
		}
	}
	st.Healthy = len(st.UnderReplicated) == 0 && len(st.Leaderless) == 0
	for i := range st.Nodes {
		n := &st.Nodes[i]
		n.Leaders, n.Replicas = leadersOf[n.ID], replicasOf[n.ID]
		st.Healthy = st.Healthy && n.Up && (n.Storage == nil || !n.Storage.ProduceRefused)
	}
	return st, nil
}

// printClusterStatus writes st as tables or as one JSON object.
func printClusterStatus(w io.Writer, st *clusterState, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	down, refusing := 0, 0
	for _, n := range st.Nodes {
		if !n.Up {
			down++
		}
		if n.Storage != nil && n.Storage.ProduceRefused {
			refusing++
		}
	}
	health := "healthy"
	if !st.Healthy {
		var why []string
		if down > 0 {
			why = append(why, fmt.Sprintf("%d of %d nodes down", down, len(st.Nodes)))
		}
		if refusing > 0 {
			why = append(why, fmt.Sprintf("%d refusing produce (low disk)", refusing))
		}
		if n := len(st.UnderReplicated); n > 0 {
			why = append(why, fmt.Sprintf("%d under-replicated", n))
		}
		if n := len(st.Leaderless); n > 0 {
			why = append(why, fmt.Sprintf("%d leaderless", n))
		}
		health = "UNHEALTHY: " + strings.Join(why, ", ")
	}
	controller := "none"
	if st.Controller >= 0 {
		controller = strconv.Itoa(int(st.Controller))
	}
	fmt.Fprintf(w, "cluster:     %s\n", st.ClusterID)
	fmt.Fprintf(w, "controller:  %s\n", controller)
	fmt.Fprintf(w, "partitions:  %d (%d under-replicated, %d leaderless, %d moving)\n", st.Partitions, len(st.UnderReplicated), len(st.Leaderless), len(st.Moving))
	fmt.Fprintf(w, "status:      %s\n\n", health)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTATUS\tCONTROLLER\tLEADERS\tREPLICAS\tDATA\tFREE\tDISK\tERROR")
	for _, n := range st.Nodes {
		status, ctl, errText := "up", "-", "-"
		if !n.Up {
			status = "DOWN"
			if n.Error != "" {
				errText = n.Error
			}
		}
		if n.Controller {
			ctl = "yes"
		}
		if n.Up && n.StorageError != "" {
			errText = n.StorageError
		}
		data := "-"
		if n.Storage != nil {
			data = formatBytes(n.Storage.LogBytes)
		}
		free, disk := formatStorage(n.Storage)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", n.ID, n.Address, status, ctl, n.Leaders, n.Replicas, data, free, disk, errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	table := func(title string, ps []partitionState) error {
		if len(ps) == 0 {
			return nil
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tREPLICAS\tISR")
		for _, p := range ps {
			leader := "none"
			if p.Leader >= 0 {
				leader = strconv.Itoa(int(p.Leader))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, leader, formatNodes(p.Replicas), formatNodes(p.ISR))
		}
		return tw.Flush()
	}
	if err := table("UNDER-REPLICATED PARTITIONS", st.UnderReplicated); err != nil {
		return err
	}
	if err := table("LEADERLESS PARTITIONS", st.Leaderless); err != nil {
		return err
	}
	if len(st.Moving) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nMOVING PARTITIONS\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tREPLICAS\tADDING\tREMOVING")
	for _, m := range st.Moving {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.Topic, m.Partition, orderedNodes(m.Replicas), formatNodes(m.Adding), formatNodes(m.Removing))
	}
	return tw.Flush()
}

// formatNodes renders node ids as "1,2,3", or "-".
func formatNodes(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := slices.Clone(ids)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, id := range s {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}
