package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicDescription is one topic of `topic describe`; also the JSON
// output.
type topicDescription struct {
	Topic       string `json:"topic"`
	ID          string `json:"id"`
	Internal    bool   `json:"internal"`
	Replication int    `json:"replication_factor"`
	// Configs are the topic's configs set on the topic or the broker
	// (every config with --all-configs), by name.
	Configs    []topicConfig          `json:"configs"`
	Partitions []partitionDescription `json:"partitions"`
}

// topicConfig is one config of a topic and where its value comes from
// (DYNAMIC_TOPIC_CONFIG: set on the topic; DEFAULT_CONFIG: the default;
// the broker's layers otherwise). Value is null for a sensitive config.
type topicConfig struct {
	Name   string  `json:"name"`
	Value  *string `json:"value"`
	Source string  `json:"source"`
}

// partitionDescription is one partition: its leader and replicas from
// Metadata, its offsets from ListOffsets (-1 when they could not be
// listed).
type partitionDescription struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	LogStart    int64   `json:"log_start_offset"`
	HighWater   int64   `json:"high_watermark"`
}

// errTopicNotFound reports a topic the broker does not know.
var errTopicNotFound = errors.New("topic not found (see `sluice topic list`)")

func newTopicDescribeCommand(bootstrap, format *string) *cobra.Command {
	var allConfigs bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show topics' configs and partitions: leader, replicas, ISR, offsets",
		Long: "Show, for each topic, its id, its configs that are not the default (all with\n" +
			"--all-configs) and, per partition, the leader, its epoch, the replicas, the\n" +
			"in-sync replicas, the log start offset and the high watermark. A topic the\n" +
			"broker does not know exits 1, naming the topic.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			md, err := adm.Metadata(ctx, topics...)
			if err != nil {
				return unreachable(*bootstrap, "describe topics", err)
			}
			for _, t := range topics {
				d, ok := md.Topics[t]
				switch {
				case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
					return fmt.Errorf("topic %s: %w", t, errTopicNotFound)
				case d.Err != nil:
					return fmt.Errorf("describe topic %s: %w", t, d.Err)
				}
			}
			starts, err := adm.ListStartOffsets(ctx, topics...)
			if err != nil {
				return unreachable(*bootstrap, "list start offsets", err)
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return unreachable(*bootstrap, "list end offsets", err)
			}
			configs, err := adm.DescribeTopicConfigs(ctx, topics...)
			if err != nil {
				return unreachable(*bootstrap, "describe topic configs", err)
			}
			var out []topicDescription
			for _, t := range topics {
				rc, err := configs.On(t, nil)
				if err != nil {
					return fmt.Errorf("describe configs of topic %s: %w", t, err)
				}
				out = append(out, describeTopic(md.Topics[t], rc, starts, ends, allConfigs))
			}
			if *format == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printTopicDescriptions(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config, defaults included")
	return cmd
}

// describeTopic assembles a topic's description from what the broker
// answered.
func describeTopic(d kadm.TopicDetail, rc kadm.ResourceConfig, starts, ends kadm.ListedOffsets, allConfigs bool) topicDescription {
	td := topicDescription{Topic: d.Topic, ID: d.ID.String(), Internal: d.IsInternal,
		Replication: d.Partitions.NumReplicas(), Configs: []topicConfig{}, Partitions: []partitionDescription{}}
	for _, c := range rc.Configs {
		if !allConfigs && c.Source == kmsg.ConfigSourceDefaultConfig {
			continue
		}
		td.Configs = append(td.Configs, topicConfig{Name: c.Key, Value: c.Value, Source: c.Source.String()})
	}
	for _, p := range d.Partitions.Sorted() {
		pd := partitionDescription{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, LogStart: -1, HighWater: -1}
		if o, ok := starts.Lookup(d.Topic, p.Partition); ok && o.Err == nil {
			pd.LogStart = o.Offset
		}
		if o, ok := ends.Lookup(d.Topic, p.Partition); ok && o.Err == nil {
			pd.HighWater = o.Offset
		}
		if pd.Replicas == nil {
			pd.Replicas = []int32{}
		}
		if pd.ISR == nil {
			pd.ISR = []int32{}
		}
		td.Partitions = append(td.Partitions, pd)
	}
	return td
}

func printTopicDescriptions(w io.Writer, topics []topicDescription) error {
	for i, t := range topics {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "topic:               %s\n", t.Topic)
		fmt.Fprintf(w, "id:                  %s\n", t.ID)
		fmt.Fprintf(w, "internal:            %t\n", t.Internal)
		fmt.Fprintf(w, "partitions:          %d\n", len(t.Partitions))
		fmt.Fprintf(w, "replication-factor:  %d\n", t.Replication)
		if len(t.Configs) > 0 {
			fmt.Fprintln(w)
			if err := printConfigTable(w, t.Configs); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
		tw := newTable(w)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START-OFFSET\tHIGH-WATERMARK")
		for _, p := range t.Partitions {
			leader := "none"
			if p.Leader >= 0 {
				leader = fmt.Sprint(p.Leader)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Partition, leader, p.LeaderEpoch,
				formatNodes(p.Replicas), formatNodes(p.ISR), formatOffset(p.LogStart), formatOffset(p.HighWater))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// formatOffset renders an offset, or "-" for -1 (unknown).
func formatOffset(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}

// printConfigTable prints configs as a CONFIG, VALUE, SOURCE table: a
// sensitive value as "(sensitive)", an empty one as "" so it shows.
func printConfigTable(w io.Writer, configs []topicConfig) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
	for _, c := range configs {
		value := "(sensitive)"
		if c.Value != nil {
			value = *c.Value
			if value == "" {
				value = `""`
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, value, c.Source)
	}
	return tw.Flush()
}
