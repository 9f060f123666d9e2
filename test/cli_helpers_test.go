package test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// cliResult is one run of the sluice binary: what it wrote on each stream
// and its exit status.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the sluice binary with args, stdin as its standard input
// ("" for none) and --bootstrap-server addr appended, within testTimeout.
func runCLI(tb testing.TB, addr, stdin string, args ...string) cliResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(tb), append(args, "--bootstrap-server", addr)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		tb.Fatalf("run sluice %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustCLI is runCLI that fails the test unless the exit status is 0.
func mustCLI(tb testing.TB, addr, stdin string, args ...string) string {
	tb.Helper()
	res := runCLI(tb, addr, stdin, args...)
	if res.code != 0 {
		tb.Fatalf("sluice %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// wantExit fails the test unless res exited with code and its stderr
// (or stdout) contains every one of mention.
func wantExit(tb testing.TB, what string, res cliResult, code int, mention ...string) {
	tb.Helper()
	if res.code != code {
		tb.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, res.code, code, res.stdout, res.stderr)
		return
	}
	for _, m := range mention {
		if !strings.Contains(res.stderr+res.stdout, m) {
			tb.Errorf("%s: output does not mention %q\nstdout:\n%s\nstderr:\n%s", what, m, res.stdout, res.stderr)
		}
	}
}

// tableRows returns the rows of a whitespace-aligned table, each split
// into fields, keyed by the first field; the header row is included.
func tableRows(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return rows
}
