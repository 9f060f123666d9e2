package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
	"github.com/sluice-io/sluice/consumergroup"
)

// stuckTimeout bounds the request to the broker's admin listener.
const stuckTimeout = 3 * time.Second

// describeRow is one partition of `group describe`: its lag and whether
// the broker reports the group stuck on it. Stuck is null when unknown
// (the admin listener could not be asked, or does not coordinate the
// group).
type describeRow struct {
	lagRow
	Stuck       *bool  `json:"stuck"`
	StuckReason string `json:"stuck_reason,omitempty"`
	// StuckSinceMs is when the broker first found the partition stuck (ms
	// since the epoch).
	StuckSinceMs int64 `json:"stuck_since_ms,omitempty"`
	// StuckRebalances is how many rebalances the group went through since
	// the committed offset last moved.
	StuckRebalances int32 `json:"stuck_rebalances,omitempty"`
}

// fetchStuck asks the admin listener at addr (host:port) for the stuck
// partitions of group. It returns an error saying why the stuck state is
// unknown: no --admin, the listener unreachable or answering badly, or
// not coordinating the group (ask the group's coordinator node).
func fetchStuck(ctx context.Context, addr, group string) ([]consumergroup.StuckPartition, error) {
	if addr == "" {
		return nil, fmt.Errorf("--admin is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, stuckTimeout)
	defer cancel()
	url := "http://" + addr + admin.StuckPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--admin %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s (a broker older than this CLI?)", url, resp.Status)
	}
	var report consumergroup.StuckReport
	if err := json.Unmarshal(body, &report); err != nil {
		return nil, fmt.Errorf("decode %s: %w", url, err)
	}
	if !slices.Contains(report.Groups, group) {
		return nil, fmt.Errorf("the broker at --admin %s does not coordinate group %s (point --admin at the admin listener of its coordinator)", addr, group)
	}
	var out []consumergroup.StuckPartition
	for _, s := range report.Stuck {
		if s.Group == group {
			out = append(out, s)
		}
	}
	return out, nil
}

// describeRows marks rows with stuck (nil unknownErr) or leaves their
// stuck state unknown.
func describeRows(rows []lagRow, stuck []consumergroup.StuckPartition, unknownErr error) []describeRow {
	out := make([]describeRow, 0, len(rows))
	for _, r := range rows {
		d := describeRow{lagRow: r}
		if unknownErr == nil {
			d.Stuck = ptrTo(false)
			for _, s := range stuck {
				if s.Topic == r.Topic && s.Partition == r.Partition {
					d.Stuck, d.StuckReason, d.StuckSinceMs, d.StuckRebalances = ptrTo(true), s.Reason, s.Since, s.Rebalances
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// printDescribeTable writes the partitions of `group describe` with a
// STUCK column: "no", "yes (REASON)" or "?" when unknown.
func printDescribeTable(w io.Writer, rows []describeRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tTIME-LAG\tSTUCK")
	for _, r := range rows {
		stuck := "?"
		switch {
		case r.Stuck == nil:
		case *r.Stuck:
			stuck = "yes(" + r.StuckReason + ")"
		default:
			stuck = "no"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Topic, r.Partition, formatOptional(r.Committed), formatOptional(r.LogEnd), formatOptional(r.Lag), formatTimeLag(r.TimeLag), stuck)
	}
	return tw.Flush()
}
