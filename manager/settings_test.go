package manager_test

import (
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// Every Apply shows in the next Snapshot's Settings, whichever field it
// changes (NoPrefetch and PrefetchMargin once did not: the snapshot was
// redone only for a list of fields), each patch changes exactly the
// fields it names, and one out of range changes nothing.
func TestSnapshotSettingsFollowEveryApply(t *testing.T) {
	rt := newFakeRuntime()
	seedCatalogue(rt)
	m := start(t, rt, manager.Options{})
	ptr := func(n int) *int { return &n }
	u64 := func(n uint64) *uint64 { return &n }
	yes, no := true, false
	dur := func(d time.Duration) *config.Duration { v := config.Duration(d); return &v }
	tokens := func(n int) *manager.ContextLength { c := manager.ContextLength(n); return &c }
	gdsf := "gdsf"
	for _, tc := range []struct {
		name  string
		patch manager.SettingsPatch
		want  func(s *manager.Settings)
	}{
		{"budget", manager.SettingsPatch{Budget: &config.Size{Bytes: 5 << 30}}, func(s *manager.Settings) { s.Budget = config.Size{Bytes: 5 << 30} }},
		{"max loaded", manager.SettingsPatch{MaxLoaded: ptr(3)}, func(s *manager.Settings) { s.MaxLoaded = 3 }},
		{"context", manager.SettingsPatch{NumCtx: ptr(8192)}, func(s *manager.Settings) { s.NumCtx = 8192 }},
		{"policy", manager.SettingsPatch{Policy: &gdsf}, func(s *manager.Settings) { s.Policy = "gdsf" }},
		{"safety margin", manager.SettingsPatch{SafetyMargin: u64(512 << 20)}, func(s *manager.Settings) { s.SafetyMargin = 512 << 20 }},
		{"busy grace", manager.SettingsPatch{BusyGrace: dur(30 * time.Second)}, func(s *manager.Settings) { s.BusyGrace = 30 * time.Second }},
		{"load timeout", manager.SettingsPatch{LoadTimeout: dur(90 * time.Second)}, func(s *manager.Settings) { s.LoadTimeout = 90 * time.Second }},
		{"gpu only", manager.SettingsPatch{GPUOnly: &yes}, func(s *manager.Settings) { s.GPUOnly = true }},
		{"no prefetch", manager.SettingsPatch{NoPrefetch: &yes}, func(s *manager.Settings) { s.NoPrefetch = true }},
		{"prefetch margin", manager.SettingsPatch{PrefetchMargin: u64(3 << 30)}, func(s *manager.Settings) { s.PrefetchMargin = 3 << 30 }},
		{"prefetch back on", manager.SettingsPatch{NoPrefetch: &no}, func(s *manager.Settings) { s.NoPrefetch = false }},
		{"contexts", manager.SettingsPatch{Contexts: map[string]*manager.ContextLength{"a:3b": tokens(2048), "b:7b": tokens(manager.ContextAuto)}},
			func(s *manager.Settings) { s.Contexts = map[string]int{"a:3b": 2048, "b:7b": manager.ContextAuto} }},
		{"one context removed", manager.SettingsPatch{Contexts: map[string]*manager.ContextLength{"a:3b": nil}},
			func(s *manager.Settings) { s.Contexts = map[string]int{"b:7b": manager.ContextAuto} }},
	} {
		want := m.Snapshot().Settings
		want.Contexts = maps.Clone(want.Contexts)
		tc.want(&want)
		if err := m.Apply(ctxT(t), tc.patch); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := m.Snapshot().Settings
		if !reflect.DeepEqual(got.Contexts, want.Contexts) || len(got.Contexts) == 0 && len(want.Contexts) == 0 {
			got.Contexts, want.Contexts = nil, nil
		}
		got.Tables, want.Tables = score.Tables{}, score.Tables{} // not compared: unchanged and large
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Snapshot().Settings\n %+v\nwant\n %+v", tc.name, got, want)
		}
	}
	before := m.Snapshot().Settings
	for _, bad := range []manager.SettingsPatch{
		{NumCtx: ptr(1 << 62)}, {MaxLoaded: ptr(-7)}, {Contexts: map[string]*manager.ContextLength{"a:3b": tokens(0)}},
		{Policy: new("fifo")},
	} {
		if err := m.Apply(ctxT(t), bad); !errors.Is(err, manager.ErrBadSettings) {
			t.Errorf("%+v: %v, want ErrBadSettings", bad, err)
		}
	}
	if after := m.Snapshot().Settings; after.NumCtx != before.NumCtx || after.MaxLoaded != before.MaxLoaded || after.Policy != before.Policy {
		t.Errorf("a refused patch changed the settings: %+v", after)
	}
}
