package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// adminTimeout bounds one admin command (topic create, describe, ...),
// connection included.
const adminTimeout = 30 * time.Second

// addBootstrapFlag adds --bootstrap-server, as every client command has
// it, and returns where its value goes.
func addBootstrapFlag(cmd *cobra.Command) *string {
	var bootstrap string
	cmd.PersistentFlags().StringVar(&bootstrap, "bootstrap-server", "127.0.0.1:9092", "host:port of a broker to connect to")
	return &bootstrap
}

// newAdmin connects to bootstrap and returns an admin client, a context
// bounded by adminTimeout and a func that releases both.
func newAdmin(cmd *cobra.Command, bootstrap string) (*kadm.Client, context.Context, func(), error) {
	cl, ctx, done, err := newAdminClient(cmd, bootstrap)
	if err != nil {
		return nil, nil, nil, err
	}
	return kadm.NewClient(cl), ctx, done, nil
}

// newAdminClient is newAdmin's client, for requests kadm has no helper
// for (the GROUP config resource).
func newAdminClient(cmd *cobra.Command, bootstrap string) (*kgo.Client, context.Context, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", bootstrap, err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}

// unreachable wraps err from a request to bootstrap with what to check.
func unreachable(bootstrap string, what string, err error) error {
	var netErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer from %s within %s (is a broker listening there? check --bootstrap-server): %w", what, bootstrap, adminTimeout, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach %s (is a broker listening there? check --bootstrap-server): %w", what, bootstrap, err)
	}
	return fmt.Errorf("%s on %s: %w", what, bootstrap, err)
}

// errorHint returns a short pointer at the fix for a broker error about
// topic, or "".
func errorHint(topic string, err error) string {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return "see `sluice topic list`"
	case errors.Is(err, kerr.TopicAlreadyExists):
		return "choose another name, or `sluice topic delete " + topic + "` first"
	case errors.Is(err, kerr.InvalidReplicationFactor):
		return "--replication-factor must be at most the number of nodes (`sluice cluster status`)"
	case errors.Is(err, kerr.InvalidPartitions):
		return "partitions can only be added: give a larger total (`sluice topic describe " + topic + "`)"
	case errors.Is(err, kerr.InvalidConfig):
		return "see README, \"Retention, compaction and configs\", for names and values"
	}
	return ""
}

// topicResult is the outcome of a change to one topic (create, delete,
// alter-config, add-partitions); also the JSON output.
type topicResult struct {
	Topic string `json:"topic"`
	// Error is "" on success.
	Error string `json:"error,omitempty"`
	// Hint points at the fix for Error.
	Hint string `json:"hint,omitempty"`
}

// newTopicResult describes err (nil: success), with the broker's message
// and a hint.
func newTopicResult(topic string, err error, message string) topicResult {
	r := topicResult{Topic: topic}
	if err != nil {
		r.Error = err.Error()
		// The broker's message says more than kerr's generic text.
		var ke *kerr.Error
		if message != "" && errors.As(err, &ke) {
			r.Error = ke.Message + ": " + message
		} else if message != "" {
			r.Error += ": " + message
		}
		r.Hint = errorHint(topic, err)
	}
	return r
}

// printTopicResults writes results as a TOPIC STATUS table or a JSON
// array, and returns an exitFailed error naming the topics that failed.
func printTopicResults(w io.Writer, verb string, results []topicResult, format string) error {
	if format == "json" {
		if results == nil {
			results = []topicResult{}
		}
		if err := writeJSON(w, results); err != nil {
			return err
		}
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "TOPIC\tSTATUS")
		for _, r := range results {
			status := "OK"
			if r.Error != "" {
				status = r.Error
				if r.Hint != "" {
					status += " (" + r.Hint + ")"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", r.Topic, status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range results {
		if r.Error != "" {
			failed = append(failed, r.Topic)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s failed for %d of %d topics: %v", verb, len(failed), len(results), failed)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns the tabwriter of every table the CLI prints: columns
// two spaces apart.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
