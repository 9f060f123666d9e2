package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressInterval is how often a progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// isTerminal reports whether f is a terminal (a character device), where a
// redrawn progress line helps; a pipe or a file must get none.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress redraws one status line on a terminal until stopped.
type progress struct {
	w      io.Writer
	render func() string
	stopCh chan struct{}
	done   sync.WaitGroup
}

// startProgress redraws render() on w every progressInterval, if enabled;
// stop ends the redraws, waits for the goroutine and clears the line.
// Disabled, it starts nothing and stop does nothing.
func startProgress(w io.Writer, enabled bool, render func() string) (stop func()) {
	if !enabled {
		return func() {}
	}
	p := &progress{w: w, render: render, stopCh: make(chan struct{})}
	p.done.Add(1)
	go p.loop()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(p.stopCh)
			p.done.Wait()
			fmt.Fprint(p.w, "\r\033[K")
		})
	}
}

func (p *progress) loop() {
	defer p.done.Done()
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.stopCh:
			return
		case <-tick.C:
			fmt.Fprint(p.w, "\r\033[K"+p.render())
		}
	}
}

// formatBytes renders n as B, KiB, MiB or GiB.
func formatBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
