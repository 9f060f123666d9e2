package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopicCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, delete topics, alter their configs and add partitions",
		Long: "Manage the topics of a running broker (Sluice or Kafka), as kafka-topics.sh\n" +
			"and kafka-configs.sh do. Every verb takes --bootstrap-server and --format\n" +
			"table|json.\n\n" +
			"Exit status: 0 when every topic was handled; 1 when any failed (the table\n" +
			"says which and why) or the broker cannot be reached; 2 on a usage error.",
	}
	bootstrap := addBootstrapFlag(cmd)
	var format string
	cmd.PersistentFlags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return checkFormat(format) }
	cmd.AddCommand(
		newTopicCreateCommand(bootstrap, &format),
		newTopicListCommand(bootstrap, &format),
		newTopicDescribeCommand(bootstrap, &format),
		newTopicDeleteCommand(bootstrap, &format),
		newTopicAlterConfigCommand(bootstrap, &format),
		newTopicAddPartitionsCommand(bootstrap, &format),
	)
	return cmd
}

// parseKeyValues splits each "k=v" of flag into a map; an entry without
// "=" or with an empty key is a usage error naming flag.
func parseKeyValues(flag string, pairs []string) (map[string]string, error) {
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q is not name=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func newTopicCreateCommand(bootstrap, format *string) *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Long: "Create topics with --partitions partitions of --replication-factor replicas\n" +
			"each (-1: the broker's num.partitions / default.replication.factor) and\n" +
			"the topic configs given with --config name=value (repeatable; Kafka's names,\n" +
			"such as retention.ms or cleanup.policy).",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if partitions == 0 || partitions < -1 {
				return usageErrorf("--partitions %d: give a positive count, or -1 for the broker's default", partitions)
			}
			if replication == 0 || replication < -1 {
				return usageErrorf("--replication-factor %d: give a positive count, or -1 for the broker's default", replication)
			}
			values, err := parseKeyValues("config", configs)
			if err != nil {
				return err
			}
			var cfg map[string]*string
			if len(values) > 0 {
				cfg = make(map[string]*string, len(values))
				for k, v := range values {
					cfg[k] = &v
				}
			}
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.CreateTopics(ctx, partitions, replication, cfg, topics...)
			if err != nil {
				return unreachable(*bootstrap, "create topics", err)
			}
			var results []topicResult
			for _, t := range topics {
				r, ok := resps[t]
				if !ok {
					results = append(results, topicResult{Topic: t, Error: "not in the broker's answer"})
					continue
				}
				if ifNotExists && r.Err != nil && errors.Is(r.Err, kerr.TopicAlreadyExists) {
					r.Err = nil
				}
				results = append(results, newTopicResult(t, r.Err, r.ErrMessage))
			}
			return printTopicResults(cmd.OutOrStdout(), "create", results, *format)
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", -1, "partitions of each topic; -1: the broker's num.partitions")
	f.Int16VarP(&replication, "replication-factor", "r", -1, "replicas of each partition; -1: the broker's default.replication.factor")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config name=value (repeatable), e.g. retention.ms=3600000")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed for a topic that already exists (its settings are not checked)")
	return cmd
}

// topicListRow is one topic of `topic list`; also the JSON output.
type topicListRow struct {
	Topic       string `json:"topic"`
	ID          string `json:"id"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replication_factor"`
	Internal    bool   `json:"internal"`
}

func newTopicListCommand(bootstrap, format *string) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics with their partition count and replication factor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			details, err := list(ctx)
			if err != nil {
				return unreachable(*bootstrap, "list topics", err)
			}
			rows := []topicListRow{}
			for _, t := range details.Sorted() {
				if t.Err != nil {
					continue // being created or deleted
				}
				rows = append(rows, topicListRow{Topic: t.Topic, ID: t.ID.String(), Partitions: len(t.Partitions),
					Replication: t.Partitions.NumReplicas(), Internal: t.IsInternal})
			}
			return printTopicList(cmd.OutOrStdout(), rows, *format)
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics (__consumer_offsets)")
	return cmd
}

func printTopicList(w io.Writer, rows []topicListRow, format string) error {
	if format == "json" {
		return writeJSON(w, rows)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION-FACTOR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", r.Topic, r.Partitions, r.Replication)
	}
	return tw.Flush()
}

func newTopicDeleteCommand(bootstrap, format *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC...",
		Short: "Delete topics and their data",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return unreachable(*bootstrap, "delete topics", err)
			}
			var results []topicResult
			for _, t := range topics {
				r, ok := resps[t]
				if !ok {
					results = append(results, topicResult{Topic: t, Error: "not in the broker's answer"})
					continue
				}
				results = append(results, newTopicResult(t, r.Err, r.ErrMessage))
			}
			return printTopicResults(cmd.OutOrStdout(), "delete", results, *format)
		},
	}
}

func newTopicAddPartitionsCommand(bootstrap, format *string) *cobra.Command {
	var add, total int
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC... (--num N | --total N)",
		Short: "Add partitions to topics",
		Long: "Add --num N partitions to each topic, or grow each to --total N partitions.\n" +
			"Partitions are never removed, and keys map to partitions by their count:\n" +
			"records with a key written after this may land in another partition than\n" +
			"those before.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			numSet, totalSet := cmd.Flags().Changed("num"), cmd.Flags().Changed("total")
			switch {
			case numSet == totalSet:
				return usageErrorf("give exactly one of --num (partitions to add) and --total (partitions wanted)")
			case numSet && add <= 0:
				return usageErrorf("--num %d: give a positive number of partitions to add", add)
			case totalSet && total <= 0:
				return usageErrorf("--total %d: give a positive number of partitions", total)
			}
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			var resps kadm.CreatePartitionsResponses
			if numSet {
				resps, err = adm.CreatePartitions(ctx, add, topics...)
			} else {
				resps, err = adm.UpdatePartitions(ctx, total, topics...)
			}
			if err != nil {
				return unreachable(*bootstrap, "add partitions", err)
			}
			var results []topicResult
			for _, t := range topics {
				r, ok := resps[t]
				if !ok {
					results = append(results, topicResult{Topic: t, Error: "not in the broker's answer"})
					continue
				}
				results = append(results, newTopicResult(t, r.Err, r.ErrMessage))
			}
			return printTopicResults(cmd.OutOrStdout(), "add-partitions", results, *format)
		},
	}
	cmd.Flags().IntVarP(&add, "num", "n", 0, "partitions to add to each topic")
	cmd.Flags().IntVar(&total, "total", 0, "partitions each topic should have in all")
	return cmd
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
