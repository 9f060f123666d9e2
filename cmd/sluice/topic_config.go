package main

import (
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicAlterConfigCommand(bootstrap, format *string) *cobra.Command {
	var (
		set    []string
		remove []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC... [--set name=value]... [--delete name]...",
		Short: "Set or remove topic configs",
		Long: "Set topic configs (--set name=value, repeatable) and remove overrides so the\n" +
			"default applies again (--delete name, repeatable), with Kafka's names such as\n" +
			"retention.ms or cleanup.policy. Configs not named keep their values\n" +
			"(IncrementalAlterConfigs). --dry-run has the broker validate the change\n" +
			"without applying it.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			alter, err := configAlterations(set, remove)
			if err != nil {
				return err
			}
			adm, ctx, done, err := newAdmin(cmd, *bootstrap)
			if err != nil {
				return err
			}
			defer done()
			alterFn := adm.AlterTopicConfigs
			if dryRun {
				alterFn = adm.ValidateAlterTopicConfigs
			}
			resps, err := alterFn(ctx, alter, topics...)
			if err != nil {
				return unreachable(*bootstrap, "alter topic configs", err)
			}
			var results []topicResult
			for _, t := range topics {
				r, err := resps.On(t, nil)
				if err != nil {
					results = append(results, topicResult{Topic: t, Error: "not in the broker's answer"})
					continue
				}
				results = append(results, newTopicResult(t, r.Err, r.ErrMessage))
			}
			return printTopicResults(cmd.OutOrStdout(), "alter-config", results, *format)
		},
	}
	addAlterConfigFlags(cmd, &set, &remove, &dryRun, "topic")
	return cmd
}

// addAlterConfigFlags adds the flags of an alter-config verb (topic,
// share-group): --set, --delete and --dry-run; owner names what holds
// the configs.
func addAlterConfigFlags(cmd *cobra.Command, set, remove *[]string, dryRun *bool, owner string) {
	f := cmd.Flags()
	f.StringArrayVar(set, "set", nil, "set config name=value (repeatable)")
	f.StringArrayVar(remove, "delete", nil, "remove the "+owner+"'s value of this config, so the default applies (repeatable)")
	f.BoolVar(dryRun, "dry-run", false, "validate the change on the broker without applying it")
}

// configAlterations turns alter-config's --set name=value and --delete
// name flags into IncrementalAlterConfigs operations, sets first in name
// order; a usage error when there is nothing to change, a --set is not
// name=value, a --delete names nothing, or a config is both set and
// deleted.
func configAlterations(set, remove []string) ([]kadm.AlterConfig, error) {
	if len(set) == 0 && len(remove) == 0 {
		return nil, usageErrorf("nothing to change: give --set name=value or --delete name")
	}
	values, err := parseKeyValues("set", set)
	if err != nil {
		return nil, err
	}
	var alter []kadm.AlterConfig
	for _, name := range sortedKeys(values) {
		v := values[name]
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: &v})
	}
	for _, name := range remove {
		if name == "" {
			return nil, usageErrorf("--delete needs a config name")
		}
		if _, both := values[name]; both {
			return nil, usageErrorf("config %s is both set and deleted", name)
		}
		alter = append(alter, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name})
	}
	return alter, nil
}
