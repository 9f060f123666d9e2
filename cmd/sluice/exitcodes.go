package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Exit codes shared by every sluice command (README, "Exit status"), 0
// being success:
const (
	// exitFailed: the operation failed or was refused: the broker could
	// not be reached, answered with an error, or the named topic or group
	// does not exist.
	exitFailed = 1
	// exitUsage: the command line is wrong (an unknown command or flag, a
	// missing argument, a value out of range); nothing was sent.
	exitUsage = 2
)

// exitError is an error that ends the process with its code; main prints
// err, if any, on stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error that exits with exitUsage.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// checkFormat checks a --format value of the commands that print tables
// for people or JSON for scripts.
func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return usageErrorf("--format %q is neither table nor json", format)
	}
	return nil
}

// markUsageErrors makes every command line mistake under root exit with
// exitUsage: flag errors, positional argument checks, and an unknown
// subcommand of a command that only groups others (which cobra would
// otherwise answer with its help and exit status 0).
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				return usageErrorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
		} else if check := cmd.Args; check != nil {
			cmd.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageErrorf("%s: %w (usage: %s)", cmd.CommandPath(), err, cmd.UseLine())
				}
				return nil
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
