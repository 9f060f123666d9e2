package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errNoOpenTransaction is abort's answer when no producer's open
// transaction starts at --start-offset.
var errNoOpenTransaction = errors.New("no open transaction starts at that offset")

func newTransactionsCommand() *cobra.Command {
	var bootstrap string
	cmd := &cobra.Command{
		Use:   "transactions",
		Short: "List, describe and abort transactions; find hanging ones",
		Long: "Inspect and repair transactions on a running broker (Sluice or Kafka), as\n" +
			"kafka-transactions.sh does: list and describe transactional ids, describe\n" +
			"the producers of a partition, abort an open transaction on a partition\n" +
			"(WriteTxnMarkers, as its coordinator would) and find hanging transactions.",
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&bootstrap, "bootstrap-server", "127.0.0.1:9092", "host:port of a broker to connect to")
	admin := func(cmd *cobra.Command) (*kadm.Client, context.Context, func(), error) {
		return newAdmin(cmd, bootstrap)
	}

	var listFormat string
	list := &cobra.Command{
		Use:   "list",
		Short: "List every transactional id with its coordinator, producer id and state",
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
			txns, err := adm.ListTransactions(ctx, nil, nil)
			if err != nil {
				return fmt.Errorf("list transactions on %s: %w", bootstrap, err)
			}
			return printTransactionList(cmd.OutOrStdout(), txns, listFormat)
		},
	}
	list.Flags().StringVar(&listFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(list)

	var describeFormat string
	describe := &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID",
		Short: "Show a transactional id's producer, state, timeout and partitions",
		Long: "Show a transactional id's coordinator, producer id and epoch, state,\n" +
			"timeout, when its current transaction started and the partitions in it.\n" +
			"An id the coordinator does not know exits 1.",
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
			described, err := adm.DescribeTransactions(ctx, args[0])
			if err != nil {
				return fmt.Errorf("describe transaction %s on %s: %w", args[0], bootstrap, err)
			}
			d, ok := described[args[0]]
			switch {
			case !ok:
				return fmt.Errorf("transactional id %s: not in the broker's answer", args[0])
			case d.Err != nil:
				return fmt.Errorf("describe transaction %s: %w", args[0], d.Err)
			}
			return printTransaction(cmd.OutOrStdout(), d, time.Now(), describeFormat)
		},
	}
	describe.Flags().StringVar(&describeFormat, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.AddCommand(describe)

	cmd.AddCommand(newDescribeProducersCommand(admin, &bootstrap))
	cmd.AddCommand(newAbortTransactionCommand(admin, &bootstrap))
	cmd.AddCommand(newFindHangingCommand(admin, &bootstrap))
	return cmd
}

// adminFunc connects a command to the broker: the admin client, a context
// bounded by the command's timeout, and the function that releases both.
type adminFunc func(cmd *cobra.Command) (*kadm.Client, context.Context, func(), error)

func newDescribeProducersCommand(admin adminFunc, bootstrap *string) *cobra.Command {
	var topic, format string
	var partition int32
	cmd := &cobra.Command{
		Use:   "describe-producers --topic T --partition P",
		Short: "Show the active producers of a partition and their open transactions",
		Long: "Show, from the partition's leader, each active producer's id and epoch,\n" +
			"last sequence and timestamp, the epoch of the coordinator that wrote its\n" +
			"last marker and the start offset of its open transaction (-1: none).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if topic == "" || partition < 0 {
				return usageErrorf("describe-producers needs --topic and a --partition of at least 0")
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			p, err := describeProducers(ctx, adm, topic, partition)
			if err != nil {
				return fmt.Errorf("describe producers of %s-%d on %s: %w", topic, partition, *bootstrap, err)
			}
			return printProducers(cmd.OutOrStdout(), p.ActiveProducers.Sorted(), format)
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic of the partition (required)")
	cmd.Flags().Int32Var(&partition, "partition", -1, "partition number (required)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	return cmd
}

// describeProducers asks the leader of topic's partition for its active
// producers.
func describeProducers(ctx context.Context, adm *kadm.Client, topic string, partition int32) (kadm.DescribedProducersPartition, error) {
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {partition: {}}})
	if err != nil {
		return kadm.DescribedProducersPartition{}, err
	}
	p, ok := described[topic].Partitions[partition]
	switch {
	case !ok:
		return p, fmt.Errorf("partition not in the broker's answer")
	case p.Err != nil:
		if p.ErrMessage != "" {
			return p, fmt.Errorf("%w: %s", p.Err, p.ErrMessage)
		}
		return p, p.Err
	}
	return p, nil
}

func newAbortTransactionCommand(admin adminFunc, bootstrap *string) *cobra.Command {
	var topic string
	var partition int32
	var startOffset, producerID int64
	var producerEpoch int16
	var coordinatorEpoch int32
	cmd := &cobra.Command{
		Use:   "abort --topic T --partition P (--start-offset O | --producer-id ID --producer-epoch E --coordinator-epoch C)",
		Short: "Abort an open transaction on one partition (writes its ABORT marker)",
		Long: "Abort a producer's open transaction on one partition by writing an ABORT\n" +
			"marker there (WriteTxnMarkers), as kafka-transactions.sh abort does: for a\n" +
			"hanging transaction its coordinator no longer completes. With --start-offset\n" +
			"the producer is the one whose open transaction starts at that offset\n" +
			"(describe-producers); otherwise give its id, epoch and coordinator epoch.\n" +
			"It does not touch the transaction coordinator's state.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" || partition < 0 {
				return usageErrorf("abort needs --topic and a --partition of at least 0")
			}
			byOffset := cmd.Flags().Changed("start-offset")
			byProducer := cmd.Flags().Changed("producer-id") || cmd.Flags().Changed("producer-epoch") || cmd.Flags().Changed("coordinator-epoch")
			switch {
			case byOffset && byProducer:
				return usageErrorf("give either --start-offset or --producer-id, --producer-epoch and --coordinator-epoch, not both")
			case !byOffset && !byProducer:
				return usageErrorf("abort needs --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch")
			case byProducer && !(cmd.Flags().Changed("producer-id") && cmd.Flags().Changed("producer-epoch") && cmd.Flags().Changed("coordinator-epoch")):
				return usageErrorf("--producer-id, --producer-epoch and --coordinator-epoch go together")
			case byOffset && startOffset < 0:
				return usageErrorf("--start-offset %d is negative", startOffset)
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			marker := kadm.TxnMarkers{ProducerID: producerID, ProducerEpoch: producerEpoch, CoordinatorEpoch: coordinatorEpoch,
				Topics: kadm.TopicsSet{topic: {partition: {}}}}
			if byOffset {
				p, err := describeProducers(ctx, adm, topic, partition)
				if err != nil {
					return fmt.Errorf("describe producers of %s-%d on %s: %w", topic, partition, *bootstrap, err)
				}
				found, ok := producerAt(p.ActiveProducers, startOffset)
				if !ok {
					return fmt.Errorf("%s-%d: %w (%d); see describe-producers", topic, partition, errNoOpenTransaction, startOffset)
				}
				marker.ProducerID, marker.ProducerEpoch = found.ProducerID, found.ProducerEpoch
				// A producer no coordinator wrote a marker for yet
				// reports -1; markers carry an epoch of at least 0.
				marker.CoordinatorEpoch = max(found.CoordinatorEpoch, 0)
			}
			resps, err := adm.WriteTxnMarkers(ctx, marker)
			if err != nil {
				return fmt.Errorf("write the abort marker on %s-%d: %w", topic, partition, err)
			}
			if err := markerError(resps, marker.ProducerID, topic, partition); err != nil {
				return fmt.Errorf("write the abort marker on %s-%d: %w", topic, partition, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "aborted the transaction of producer %d (epoch %d) on %s-%d\n", marker.ProducerID, marker.ProducerEpoch, topic, partition)
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic of the partition (required)")
	cmd.Flags().Int32Var(&partition, "partition", -1, "partition number (required)")
	cmd.Flags().Int64Var(&startOffset, "start-offset", -1, "first offset of the open transaction to abort (see describe-producers)")
	cmd.Flags().Int64Var(&producerID, "producer-id", -1, "producer id of the transaction")
	cmd.Flags().Int16Var(&producerEpoch, "producer-epoch", -1, "producer epoch of the transaction")
	cmd.Flags().Int32Var(&coordinatorEpoch, "coordinator-epoch", -1, "coordinator epoch to write the marker with")
	return cmd
}

// producerAt returns the producer whose open transaction starts at offset.
func producerAt(producers kadm.DescribedProducers, offset int64) (kadm.DescribedProducer, bool) {
	for _, p := range producers.Sorted() {
		if p.CurrentTxnStartOffset == offset {
			return p, true
		}
	}
	return kadm.DescribedProducer{}, false
}

// markerError returns the error the broker answered for producerID's
// marker on topic's partition, or an error if the answer lacks it.
func markerError(resps kadm.TxnMarkersResponses, producerID int64, topic string, partition int32) error {
	p, ok := resps[producerID].Topics[topic].Partitions[partition]
	if !ok {
		return fmt.Errorf("the partition is not in the broker's answer")
	}
	return p.Err
}

func newFindHangingCommand(admin adminFunc, bootstrap *string) *cobra.Command {
	var topic, format string
	var partition, brokerID int32
	var maxTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "find-hanging [--broker-id N | --topic T [--partition P]] [--max-transaction-timeout 15m]",
		Short: "Find open transactions no coordinator will complete",
		Long: "Find hanging transactions, as kafka-transactions.sh find-hanging does: open\n" +
			"transactions (describe-producers) older than --max-transaction-timeout\n" +
			"whose producer no transactional id holds any more, or whose transactional\n" +
			"id's transaction does not include the partition. It looks at the partitions\n" +
			"led by --broker-id, or of --topic (one --partition), or of every topic.\n" +
			"Abort one with `sluice transactions abort`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			switch {
			case cmd.Flags().Changed("broker-id") && topic != "":
				return usageErrorf("give --broker-id or --topic, not both")
			case cmd.Flags().Changed("partition") && topic == "":
				return usageErrorf("--partition needs --topic")
			case cmd.Flags().Changed("partition") && partition < 0:
				return usageErrorf("--partition %d is negative", partition)
			case maxTimeout <= 0:
				return usageErrorf("--max-transaction-timeout %s must be positive", maxTimeout)
			}
			adm, ctx, done, err := admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			var topics []string
			if topic != "" {
				topics = []string{topic}
			}
			md, err := adm.Metadata(ctx, topics...)
			if err != nil {
				return fmt.Errorf("metadata from %s: %w", *bootstrap, err)
			}
			set := kadm.TopicsSet{}
			for _, t := range md.Topics.Sorted() {
				if t.Err != nil {
					return fmt.Errorf("topic %s: %w", t.Topic, t.Err)
				}
				for _, p := range t.Partitions.Sorted() {
					switch {
					case cmd.Flags().Changed("broker-id") && p.Leader != brokerID:
					case cmd.Flags().Changed("partition") && p.Partition != partition:
					default:
						set.Add(t.Topic, p.Partition)
					}
				}
			}
			hanging, err := findHanging(ctx, adm, set, maxTimeout, time.Now())
			if err != nil {
				return err
			}
			return printHanging(cmd.OutOrStdout(), hanging, time.Now(), format)
		},
	}
	cmd.Flags().Int32Var(&brokerID, "broker-id", -1, "look at the partitions this broker leads")
	cmd.Flags().StringVar(&topic, "topic", "", "look at this topic's partitions")
	cmd.Flags().Int32Var(&partition, "partition", -1, "with --topic: only this partition")
	cmd.Flags().DurationVar(&maxTimeout, "max-transaction-timeout", 15*time.Minute, "the brokers' transaction.max.timeout.ms: transactions open for less are not hanging")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	return cmd
}

// findHanging returns the open transactions on the partitions of set that
// have been open longer than maxTimeout and that no transactional id
// still holds (KIP-664): the producer id is no transactional id's, the
// id's producer moved on, or its transaction lacks the partition.
func findHanging(ctx context.Context, adm *kadm.Client, set kadm.TopicsSet, maxTimeout time.Duration, now time.Time) ([]kadm.DescribedProducer, error) {
	if len(set) == 0 {
		return nil, nil
	}
	described, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("describe producers: %w", err)
	}
	var candidates []kadm.DescribedProducer
	var ids []int64
	for _, t := range described.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			if p.Err != nil {
				return nil, fmt.Errorf("describe producers of %s-%d: %w", p.Topic, p.Partition, p.Err)
			}
			for _, pr := range p.ActiveProducers.Sorted() {
				if pr.CurrentTxnStartOffset < 0 || now.Sub(time.UnixMilli(pr.LastTimestamp)) < maxTimeout {
					continue
				}
				candidates = append(candidates, pr)
				ids = append(ids, pr.ProducerID)
			}
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	listed, err := adm.ListTransactions(ctx, ids, nil)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	idOf := map[int64]string{}
	var txnIDs []string
	for _, l := range listed.Sorted() {
		idOf[l.ProducerID] = l.TxnID
		txnIDs = append(txnIDs, l.TxnID)
	}
	var txns kadm.DescribedTransactions
	if len(txnIDs) > 0 {
		if txns, err = adm.DescribeTransactions(ctx, txnIDs...); err != nil {
			return nil, fmt.Errorf("describe transactions: %w", err)
		}
	}
	return hangingOf(candidates, idOf, txns)
}

// hangingOf keeps the candidates (open transactions older than the
// timeout) that no transactional id holds: idOf maps producer ids to the
// transactional ids listed for them, txns describes those ids. An id that
// could not be described for another reason than being unknown is an
// error: nothing can be said of its transactions.
func hangingOf(candidates []kadm.DescribedProducer, idOf map[int64]string, txns kadm.DescribedTransactions) ([]kadm.DescribedProducer, error) {
	var hanging []kadm.DescribedProducer
	for _, c := range candidates {
		id, ok := idOf[c.ProducerID]
		if !ok {
			hanging = append(hanging, c)
			continue
		}
		d, ok := txns[id]
		switch {
		case !ok || errors.Is(d.Err, kerr.TransactionalIDNotFound):
			// Gone since it was listed: nobody holds the transaction.
			hanging = append(hanging, c)
			continue
		case d.Err != nil:
			return nil, fmt.Errorf("describe transaction %s: %w", id, d.Err)
		}
		_, inTxn := d.Topics[c.Topic][c.Partition]
		if d.ProducerID != c.ProducerID || !inTxn {
			hanging = append(hanging, c)
		}
	}
	return hanging, nil
}
