package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vramkeeper/vramkeeper/manager/evict"
	"github.com/vramkeeper/vramkeeper/manager/score"
)

// A dry run of a load: which model, at which context, what it would evict,
// and whether it fits at all. The owner answers it from the scheduler's
// state as it is now, with the plan a load would make, and changes
// nothing: no op, no event, no snapshot. A load made afterwards reads the
// server again first, so the answer is advice, as a snapshot is.

// PlanRequest asks what loading a model (Model at ContextLength, 0 for its
// own) or the best model for a task (Task, Role) would do now.
type PlanRequest struct {
	Model         string `json:"model,omitempty"`
	ContextLength int    `json:"context_length,omitempty"`
	Task          string `json:"task,omitempty"`
	Role          string `json:"role,omitempty"`
}

// Check says what is wrong with a request, or nil.
func (r PlanRequest) Check() error {
	switch {
	case (r.Model == "") == (r.Task == ""):
		return fmt.Errorf("name either a model or a task to plan for: %w", ErrBadSettings)
	case r.Role != "" && r.Task == "":
		return fmt.Errorf("a role goes with a task: %w", ErrBadSettings)
	case r.ContextLength != 0 && r.Task != "":
		return fmt.Errorf("a context length goes with a model, not a task: %w", ErrBadSettings)
	case r.ContextLength < 0 || r.ContextLength > MaxContext:
		return fmt.Errorf("context length %d: %w: want 1 to %d tokens, or 0 for the model's own", r.ContextLength, ErrBadSettings, MaxContext)
	}
	return nil
}

// Plan is what a load would do now.
type Plan struct {
	Model string `json:"model"`
	// Reason is why this model, for a task.
	Reason string `json:"reason,omitempty"`
	// ContextLength is what it would be loaded at; NeedBytes what it
	// takes there, measured at an earlier load or estimated.
	ContextLength int    `json:"context_length"`
	NeedBytes     uint64 `json:"need_bytes"`
	Measured      bool   `json:"measured"`
	// Loaded: it is loaded at that context already; nothing would change.
	Loaded bool `json:"loaded"`
	// FitsNow: it fits beside what is loaded, evicting nothing.
	FitsNow bool `json:"fits_now"`
	// CanLoad: a load would go ahead now, evicting Evict first.
	CanLoad    bool     `json:"can_load"`
	Evict      []string `json:"evict"`
	EvictBytes uint64   `json:"evict_bytes"`
	// NeverFits: it is larger than the whole budget at this context.
	NeverFits bool `json:"never_fits"`
	// Blocked says why a load would not go ahead now, or would wait.
	Blocked string `json:"blocked,omitempty"`
	// BudgetBytes is the budget; RoomBytes what our models may hold now
	// (the budget, less what other programs hold on a card a driver
	// reads); FreeBytes what is left of it beside the models loaded.
	BudgetBytes uint64 `json:"budget_bytes"`
	RoomBytes   uint64 `json:"room_bytes"`
	FreeBytes   uint64 `json:"free_bytes"`
	// MaxContextNow is the largest power-of-two context that fits beside
	// what is loaded; MaxContext the largest once every model that may be
	// evicted (not pinned, not serving) is gone. 0: not even the smallest.
	MaxContextNow int `json:"max_context_now"`
	MaxContext    int `json:"max_context"`

	// cause is the error a load would meet (nil when it would go ahead).
	cause error
}

// Plan answers what loading a model, or the best model for a task, would
// do now, without doing it. An unknown model, task or role is an error;
// for a task, so is finding no model that would load, as
// BestModelForTask's error would say. A model that cannot load now is a
// plan that says why (Blocked).
func (m *Manager) Plan(ctx context.Context, req PlanRequest) (Plan, error) {
	if err := req.Check(); err != nil {
		return Plan{}, err
	}
	if !m.Snapshot().Discovered {
		if err := m.Refresh(ctx); err != nil {
			return Plan{}, fmt.Errorf("discovering models: %w", err)
		}
	}
	var ranked []score.Ranked
	if req.Task != "" {
		rk, err := m.rank(ctx, req.Task, req.Role)
		if err != nil {
			return Plan{}, err
		}
		ranked = rk.ranked
		if len(ranked) == 0 {
			return Plan{}, fmt.Errorf("task %q: %w", req.Task, ErrNoCandidate)
		}
	}
	var (
		p   Plan
		err error
	)
	done := make(chan error, 1)
	if aerr := m.ask(ctx, evRead{func() {
		if req.Task == "" {
			p, err = m.sched.plan(req.Model, req.ContextLength)
		} else {
			p, err = m.sched.planBest(ranked, taskRole(req.Task, req.Role))
		}
		done <- nil
	}}, done); aerr != nil {
		return Plan{}, aerr
	}
	return p, err
}

// planBest is the plan for the first ranked model a load would take, as
// bestModel goes down the ranking: past models that can never fit, failed
// lately, or find no room, but not past a reason the next would meet too.
func (s *scheduler) planBest(ranked []score.Ranked, what string) (Plan, error) {
	var skipped []string
	var lastErr error
	for _, r := range ranked {
		p, err := s.plan(r.Name, 0)
		switch {
		case errors.Is(err, ErrModelUnknown):
			continue // removed since it was ranked
		case err != nil:
			return Plan{}, err
		case p.cause == nil || errors.Is(p.cause, evict.ErrBlocked) || errors.Is(p.cause, errNotEstimated):
			// It would load, or wait for its turn, as a load would.
			p.Reason = r.Reason
			if len(skipped) > 0 {
				p.Reason += "; chosen over " + strings.Join(skipped, "; ")
			}
			return p, nil
		case tryNext(p.cause):
			skipped = append(skipped, p.Blocked)
			lastErr = p.cause
		default:
			return Plan{}, p.cause
		}
	}
	if lastErr == nil {
		lastErr = ErrNeverFits
	}
	return Plan{}, fmt.Errorf("no model for %s fits and loads: %s: %w", what, strings.Join(skipped, "; "), lastErr)
}

// errNotEstimated: the model's details are still being read, so its size
// is not known; a load would wait for them.
var errNotEstimated = errors.New("its size is not known yet: its details are still being read from the server")

// plan is what a load of name at numCtx (0: its own) would do now, as
// prepare would decide it. It reads the scheduler and the catalogue and
// changes neither.
func (s *scheduler) plan(name string, numCtx int) (Plan, error) {
	sp, ok := s.cat.spec(name)
	if !ok {
		if listed, _, err := s.cat.listState(); !listed && err != nil {
			return Plan{}, fmt.Errorf("cannot list models: %w", errors.Join(err, ErrUnreachable))
		}
		return Plan{}, s.cat.unknown(name)
	}
	sl := s.record(sp.name) // a copy: the plan touches no record
	md := target{sp, &sl}
	ctx := s.ctxFor(md, numCtx)
	need, measured := s.cat.needAt(md.name, ctx)
	st := s.status()
	p := Plan{Model: md.name, ContextLength: ctx, NeedBytes: need, Measured: measured,
		BudgetBytes: st.budget, RoomBytes: st.room, Evict: []string{}}
	free := max(st.room, st.ours) - st.ours
	if md.onCard() {
		free += md.size
	}
	p.FreeBytes = free
	p.MaxContextNow = maxContext(md.fit, free)
	p.MaxContext = maxContext(md.fit, s.roomIfEvicted(md))

	block := func(err error) (Plan, error) {
		p.CanLoad, p.cause, p.Blocked = false, err, err.Error()
		return p, nil
	}
	switch {
	case s.handedBack:
		return block(fmt.Errorf("not loading %s: %w", md.name, ErrYielded))
	case s.hit(md, numCtx):
		p.Loaded, p.FitsNow, p.CanLoad = true, true, true
		p.ContextLength, p.NeedBytes, p.Measured = md.loadedCtx, md.size, true
		return p, nil
	}
	if err := s.backingOff(md.spec, ctx); err != nil {
		return block(err)
	}
	switch {
	case !md.hasDetails:
		return block(fmt.Errorf("%s: no details from the server: %w", md.name, errors.Join(md.showErr, ErrLoadFailed)))
	case !md.detailed && !measured:
		return block(fmt.Errorf("%s: %w", md.name, errNotEstimated))
	case md.estErr != "" && !measured:
		return block(fmt.Errorf("%s: cannot estimate its size (%s), so it cannot be placed safely: %w", md.name, md.estErr, ErrLoadFailed))
	}
	victims, err := s.victims(md, need)
	switch {
	case errors.Is(err, evict.ErrNeverFits):
		p.NeverFits = true
		return block(fmt.Errorf("%s needs %s, budget %s: %w", md.name, fmtBytes(need), fmtBytes(p.BudgetBytes), err))
	case errors.Is(err, evict.ErrBlocked):
		return block(fmt.Errorf("%s would wait: %w", md.name, err))
	case err != nil:
		return block(fmt.Errorf("%s needs %s, budget %s: %w", md.name, fmtBytes(need), fmtBytes(p.BudgetBytes), err))
	}
	p.Evict = names(victims)
	for _, v := range victims {
		p.EvictBytes += v.Bytes
	}
	p.FitsNow = len(victims) == 0
	if len(victims) > 0 && s.paused {
		return block(fmt.Errorf("%s needs %s evicted to fit: %w", md.name, strings.Join(p.Evict, ", "), ErrPaused))
	}
	p.CanLoad = true
	return p, nil
}

// victims are the models a load of md (need bytes) evicts first, in
// order, as the policy picks them; a model loaded at another context is
// replaced by the load, so its bytes do not count twice.
func (s *scheduler) victims(md target, need uint64) ([]evict.Entry, error) {
	loaded := slices.DeleteFunc(s.entries(), func(e evict.Entry) bool { return e.Name == md.name })
	lim := s.limits()
	if md.state == Loaded && lim.HasDevice {
		lim.DeviceRoom += md.size
	}
	return evict.Plan(loaded, need, lim, s.tune.policy)
}

// roomIfEvicted is what md may take once every model that may be evicted
// is gone: the budget less the pinned and serving ones, within the model
// count, never more than the card has free with the evicted ones' memory.
func (s *scheduler) roomIfEvicted(md target) uint64 {
	var kept, freed uint64
	stay := 0
	for _, e := range s.entries() {
		switch {
		case e.Name == md.name:
		case e.Pinned || e.Busy:
			kept += e.Bytes
			stay++
		default:
			freed += e.Bytes
		}
	}
	lim := s.limits()
	if lim.MaxLoaded > 0 && stay+1 > lim.MaxLoaded {
		return 0
	}
	room := max(lim.Budget, kept) - kept
	if lim.HasDevice {
		dev := lim.DeviceRoom + freed
		if md.state == Loaded {
			dev += md.size
		}
		room = min(room, dev)
	}
	return room
}
