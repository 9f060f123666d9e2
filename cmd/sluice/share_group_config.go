package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shareGroupConfigs is `share-group config`'s output: a group's configs
// (GROUP resource) that are not the default, or all with --all-configs.
type shareGroupConfigs struct {
	Group   string        `json:"group"`
	Configs []topicConfig `json:"configs"`
}

// groupConfigResult is the outcome of `share-group alter-config` on one
// group; also its JSON output.
type groupConfigResult struct {
	Group string `json:"group"`
	// Error is "" on success.
	Error string `json:"error,omitempty"`
}

// newShareGroupConfigCommand is `share-group config GROUP`: the group's
// configs, as DescribeConfigs of the GROUP resource reports them.
func newShareGroupConfigCommand(bootstrap *string) *cobra.Command {
	var (
		format     string
		allConfigs bool
	)
	cmd := &cobra.Command{
		Use:   "config GROUP",
		Short: "Show a share group's configs (share.record.lock.duration.ms, errors.deadletterqueue.topic.name, ...)",
		Long: "Show a share group's configs (the GROUP config resource: DescribeConfigs),\n" +
			"those set on the group or by the broker (every one, defaults included, with\n" +
			"--all-configs), each with its source: GROUP_CONFIG (set on the group),\n" +
			"STATIC_BROKER_CONFIG (the broker's default) or DEFAULT_CONFIG. Any group id\n" +
			"may be shown, also one with no members yet. Change them with alter-config.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			cl, ctx, done, err := newAdminClient(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			out, err := describeGroupConfigs(ctx, cl, args[0], allConfigs)
			if err != nil {
				return unreachable(*bootstrap, "describe share group configs", err)
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return printGroupConfigs(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config, defaults included")
	return cmd
}

// describeGroupConfigs reads group's configs with DescribeConfigs.
func describeGroupConfigs(ctx context.Context, cl *kgo.Client, group string, allConfigs bool) (shareGroupConfigs, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return shareGroupConfigs{}, err
	}
	if len(resp.Resources) != 1 {
		return shareGroupConfigs{}, fmt.Errorf("the broker answered %d resources for 1", len(resp.Resources))
	}
	rr := resp.Resources[0]
	if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
		return shareGroupConfigs{}, fmt.Errorf("share group %s: %w%s", group, err, brokerMessage(rr.ErrorMessage))
	}
	out := shareGroupConfigs{Group: group, Configs: []topicConfig{}}
	for _, c := range rr.Configs {
		if !allConfigs && c.Source == kmsg.ConfigSourceDefaultConfig {
			continue
		}
		value := c.Value
		if c.IsSensitive {
			value = nil
		}
		out.Configs = append(out.Configs, topicConfig{Name: c.Name, Value: value, Source: c.Source.String()})
	}
	return out, nil
}

// brokerMessage formats a broker's error message to follow an error.
func brokerMessage(m *string) string {
	if m == nil || *m == "" {
		return ""
	}
	return ": " + *m
}

func printGroupConfigs(w io.Writer, g shareGroupConfigs) error {
	fmt.Fprintf(w, "group:  %s\n", g.Group)
	if len(g.Configs) == 0 {
		fmt.Fprintln(w, "\nevery config at its default (--all-configs lists them)")
		return nil
	}
	fmt.Fprintln(w)
	return printConfigTable(w, g.Configs)
}

// newShareGroupAlterConfigCommand is `share-group alter-config GROUP...`,
// shaped as `topic alter-config`: IncrementalAlterConfigs on the GROUP
// resource.
func newShareGroupAlterConfigCommand(bootstrap *string) *cobra.Command {
	var (
		set, remove []string
		dryRun      bool
		format      string
	)
	cmd := &cobra.Command{
		Use:   "alter-config GROUP... [--set name=value]... [--delete name]...",
		Short: "Set or remove share group configs",
		Long: "Set share group configs (--set name=value, repeatable) and remove a group's\n" +
			"setting so the broker's default applies again (--delete name, repeatable),\n" +
			"with Kafka's names such as share.delivery.count.limit or\n" +
			"errors.deadletterqueue.topic.name. Configs not named keep their values\n" +
			"(IncrementalAlterConfigs on the GROUP resource). A group need not exist yet.\n" +
			"--dry-run has the broker validate the change without applying it.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			alter, err := configAlterations(set, remove)
			if err != nil {
				return err
			}
			cl, ctx, done, err := newAdminClient(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			results, err := alterGroupConfigs(ctx, cl, alter, groups, dryRun)
			if err != nil {
				return unreachable(*bootstrap, "alter share group configs", err)
			}
			return printGroupConfigResults(cmd.OutOrStdout(), results, format)
		},
	}
	addAlterConfigFlags(cmd, &set, &remove, &dryRun, "group")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table (for people) or json (for scripts)")
	return cmd
}

// alterGroupConfigs applies alter to each group's configs in one
// IncrementalAlterConfigs request (validateOnly: checked, not applied),
// and returns each group's outcome with the broker's message.
func alterGroupConfigs(ctx context.Context, cl *kgo.Client, alter []kadm.AlterConfig, groups []string, validateOnly bool) ([]groupConfigResult, error) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	for _, g := range groups {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, g
		for _, a := range alter {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = a.Name, a.Value
			c.Op = kmsg.IncrementalAlterConfigOpSet
			if a.Op == kadm.DeleteConfig {
				c.Op = kmsg.IncrementalAlterConfigOpDelete
			}
			r.Configs = append(r.Configs, c)
		}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	answered := map[string]groupConfigResult{}
	for _, rr := range resp.Resources {
		res := groupConfigResult{Group: rr.ResourceName}
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			res.Error = err.Error() + brokerMessage(rr.ErrorMessage)
		}
		answered[rr.ResourceName] = res
	}
	results := make([]groupConfigResult, 0, len(groups))
	for _, g := range groups {
		res, ok := answered[g]
		if !ok {
			res = groupConfigResult{Group: g, Error: "not in the broker's answer"}
		}
		results = append(results, res)
	}
	return results, nil
}

// printGroupConfigResults writes results as a GROUP STATUS table or a
// JSON array, and returns an error naming the groups that failed.
func printGroupConfigResults(w io.Writer, results []groupConfigResult, format string) error {
	if format == "json" {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "GROUP\tSTATUS")
		for _, r := range results {
			status := "OK"
			if r.Error != "" {
				status = r.Error
			}
			fmt.Fprintf(tw, "%s\t%s\n", r.Group, status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, r.Group)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("alter-config failed for %d of %d groups: %v", len(failed), len(results), failed)
	}
	return nil
}
