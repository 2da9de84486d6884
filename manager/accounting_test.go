package manager_test

import (
	"context"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/internal/fakert"
	"github.com/vramkeeper/vramkeeper/internal/mgrtest"
	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// unstamped is a server built from source: its version says 0.0.0.
type unstamped struct{ *fakert.Runtime }

func (unstamped) Version(context.Context) (string, error) { return "0.0.0", nil }

// A server whose version says nothing is taken for the newest until a
// model loads; that load's size names its accounting, which every other
// model's estimate then follows, and the snapshot says it was inferred.
func TestAccountingInferredFromALoad(t *testing.T) {
	rt := fakert.New() // sizes follow v0.17's accounting (fakert.ModelSize)
	rt.Add("first:3b", 3, nil, 1)
	rt.Add("second:7b", 7, nil, 1)
	m := mgrtest.Start(t, manager.Options{Runtime: unstamped{rt}, GPU: &fakert.GPU{RT: rt, Total: 16 << 30},
		StateDir: t.TempDir(), PollEvery: time.Hour, Settings: manager.Settings{NumCtx: 4096}})
	manager.VerifySnapshots(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot()
	if s.Accounting != estimate.Newest.String() || s.AccountingFrom != "" {
		t.Fatalf("before any load: accounting %q from %q, want %s assumed", s.Accounting, s.AccountingFrom, estimate.Newest)
	}
	want, err := fakert.ModelSize(7)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Model("second:7b"); v.EstimateBytes == want {
		t.Fatalf("second:7b estimated %d before the inference: the newest accounting should differ from v0.17's", want)
	}
	if _, err := m.Load(ctx, "first:3b", "test"); err != nil {
		t.Fatal(err)
	}
	s = m.Snapshot()
	if s.Accounting != "v0.17 or v0.18-v0.29" || s.AccountingFrom != "first:3b" {
		t.Errorf("after a load: accounting %q from %q, want v0.17's (v0.18's alike) from first:3b", s.Accounting, s.AccountingFrom)
	}
	if v, _ := s.Model("second:7b"); v.EstimateBytes != want {
		t.Errorf("second:7b estimated %d after the inference, want %d (what the server will report)", v.EstimateBytes, want)
	}
}
