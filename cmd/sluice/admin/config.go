package admin

import (
	"fmt"
	"net"
)

// Config holds the admin listener's settings.
type Config struct {
	// Listen is the host:port the HTTP admin listener binds; empty turns
	// the listener off. Corresponds to admin.listen. Default
	// 127.0.0.1:9644.
	Listen string
	// Pprof serves the Go profiler under /debug/pprof/. Corresponds to
	// admin.pprof.enable. Default false: profiles reveal memory contents
	// and cost CPU, so they are opt-in.
	Pprof bool
}

// DefaultConfig returns the defaults: listening on 127.0.0.1:9644 without
// the profiler.
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:9644"} }

// Enabled reports whether the listener is on.
func (c Config) Enabled() bool { return c.Listen != "" }

// Validate reports a Config that cannot work: a Listen that is not
// host:port.
func (c Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("admin: listen %q is not host:port: %w", c.Listen, err)
	}
	return nil
}
