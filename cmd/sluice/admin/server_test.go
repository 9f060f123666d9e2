package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer serves s on a loopback port and shuts it down at cleanup.
func startServer(t *testing.T, cfg Config, m *Metrics, ready *Readiness) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg, m.Registry(), ready, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return "http://" + l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServerRoutes(t *testing.T) {
	var ready Readiness
	data := NewFlag("data not loaded")
	ready.Add("data", data.Check)
	m := NewMetrics("v-test")
	base := startServer(t, Config{}, m, &ready)

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-] data: data not loaded") {
		t.Fatalf("/readyz before data = %d %q, want 503 naming the data check", code, body)
	}
	data.Set(true)
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "[+] data ok") {
		t.Fatalf("/readyz after data = %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `sluice_build_info{goversion="`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d, body lacks sluice_build_info or go_goroutines:\n%.2000s", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without admin.pprof.enable = %d, want 404", code)
	}
}

func TestServerPprof(t *testing.T) {
	base := startServer(t, Config{Pprof: true}, NewMetrics("v"), &Readiness{})
	if code, body := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d", code)
	}
	if code, _ := get(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Fatalf("/debug/pprof/goroutine = %d", code)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		listen string
		ok     bool
	}{{"", true}, {"127.0.0.1:9644", true}, {":0", true}, {"localhost", false}} {
		if err := (Config{Listen: tt.listen}).Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%q) = %v, want ok %v", tt.listen, err, tt.ok)
		}
	}
}
