package consumergroup

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestPartitionLoad walks a partition's ownership through leadership
// changes: a load starts once per epoch, a superseded load's result is
// dropped, and losing leadership drops what was held.
func TestPartitionLoad(t *testing.T) {
	const self = 1
	var o PartitionLoad
	step := func(node, epoch int32, wantCode int16, wantUnload string, wantLoad bool) {
		t.Helper()
		code, unload, load := o.Follow(self, node, epoch)
		if code != wantCode || unload != wantUnload || load != wantLoad {
			t.Fatalf("Follow(node %d, epoch %d) = %d, %q, %v; want %d, %q, %v", node, epoch, code, unload, load, wantCode, wantUnload, wantLoad)
		}
	}
	step(2, 1, kerr.NotCoordinator.Code, "", false)              // another leader, nothing held
	step(self, 3, kerr.CoordinatorLoadInProgress.Code, "", true) // load starts
	step(self, 3, kerr.CoordinatorLoadInProgress.Code, "", false)
	if !o.Loading() || !o.End(3) {
		t.Fatal("the load of epoch 3 is not the one under way")
	}
	o.Install(3)
	step(self, 3, 0, "", false)
	if e, ok := o.Loaded(); !ok || e != 3 {
		t.Fatalf("Loaded = %d, %v; want 3, true", e, ok)
	}
	step(self, 4, kerr.CoordinatorLoadInProgress.Code, "leader epoch changed", true)
	step(self, 5, kerr.CoordinatorLoadInProgress.Code, "", false) // one load at a time
	if o.End(3) {
		t.Fatal("a load of another epoch ended the one under way")
	}
	if !o.End(4) {
		t.Fatal("the load of epoch 4 did not end")
	}
	step(self, 5, kerr.CoordinatorLoadInProgress.Code, "", true) // epoch 4's result was never installed
	o.End(5)
	o.Install(5)
	step(2, 6, kerr.NotCoordinator.Code, "leadership moved", false)
	if _, ok := o.Loaded(); ok {
		t.Fatal("state still held after leadership moved")
	}
	step(2, 6, kerr.NotCoordinator.Code, "", false)
}
