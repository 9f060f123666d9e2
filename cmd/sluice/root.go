package main

import "github.com/spf13/cobra"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Sluice is a commit-log broker that speaks the Kafka protocol",
		Long: "Sluice is a commit-log broker that speaks the Kafka wire protocol, so standard\n" +
			"Kafka clients (franz-go, librdkafka, kafka-python, kcat, ...) use it unchanged.",
		SilenceErrors: true, // main prints the error once
		SilenceUsage:  true, // a failed start is not a usage mistake
	}
	root.AddCommand(newServeCommand(), newTopicCommand(), newProduceCommand(), newConsumeCommand(),
		newGroupCommand(), newShareGroupCommand(), newTransactionsCommand(), newClusterCommand(), newVersionCommand())
	markUsageErrors(root)
	return root
}
