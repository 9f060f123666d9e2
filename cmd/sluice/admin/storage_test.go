package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication"
)

type fakeStorage struct {
	space  replication.SpaceState
	failed []replication.FailedReplica
}

func (f *fakeStorage) Space() replication.SpaceState               { return f.space }
func (f *fakeStorage) FailedReplicas() []replication.FailedReplica { return f.failed }

func TestStorageCollectorAndCheck(t *testing.T) {
	s := &fakeStorage{space: replication.SpaceState{Dir: "/data", FreeBytes: 500, TotalBytes: 1000, MinFreeBytes: 100}}
	if err := StorageCheck(s)(); err != nil {
		t.Fatalf("storage check of a healthy node: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewStorageCollector(s))
	want := `
# HELP sluice_storage_space_low 1 while the data dir has less free space than storage.min.free.bytes and appends are refused with KAFKA_STORAGE_ERROR.
# TYPE sluice_storage_space_low gauge
sluice_storage_space_low{dir="/data"} 1
# HELP sluice_storage_failed_replicas Partition replicas on this node whose storage failed (write or fsync error); they neither lead nor vote until the node restarts.
# TYPE sluice_storage_failed_replicas gauge
sluice_storage_failed_replicas 1
# HELP sluice_storage_replica_failed 1 for each partition replica on this node whose storage failed.
# TYPE sluice_storage_replica_failed gauge
sluice_storage_replica_failed{partition="3",topic="orders"} 1
`
	s.space.FreeBytes, s.space.Low = 50, true
	s.failed = []replication.FailedReplica{{Topic: "orders", Partition: 3, Err: errors.New("fdatasync /data/topics/orders-3/0.log: input/output error")}}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_storage_space_low", "sluice_storage_failed_replicas", "sluice_storage_replica_failed"); err != nil {
		t.Fatal(err)
	}
	err := StorageCheck(s)()
	if err == nil || !strings.Contains(err.Error(), "below storage.min.free.bytes 100") || !strings.Contains(err.Error(), "orders-3") || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("storage check = %v, want the low space and the failed replica named", err)
	}
}

func TestFaultHandler(t *testing.T) {
	fs := log.NewFaultFS(log.NewMemFS())
	h := FaultHandler(fs, nil)
	do := func(method, target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := do(http.MethodPost, "/debug/fault?path=orders-0&ops=sync&errno=ENOSPC"); code != http.StatusOK || !strings.Contains(body, "orders-0") {
		t.Fatalf("POST: %d %q", code, body)
	}
	if err := fs.MkdirAll("/topics/orders-0"); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile("/topics/orders-0/0.log", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("sync after the fault was injected: %v, want ENOSPC", err)
	}
	if code, _ := do(http.MethodPost, "/debug/fault?ops=scribble"); code != http.StatusBadRequest {
		t.Fatalf("POST with a bad op: %d, want 400", code)
	}
	if code, _ := do(http.MethodPost, "/debug/fault?errno=EPERM"); code != http.StatusBadRequest {
		t.Fatalf("POST with an unknown errno: %d, want 400", code)
	}
	if code, body := do(http.MethodDelete, "/debug/fault"); code != http.StatusOK || body != "" {
		t.Fatalf("DELETE: %d %q", code, body)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync after the faults were cleared: %v", err)
	}
	if code, _ := do(http.MethodPut, "/debug/fault"); code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d, want 405", code)
	}
}
