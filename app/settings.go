package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/config"
)

// settingsForm is the Settings tab. Its values are only written to the
// config file and the manager when Save is pressed and they validate.
type settingsForm struct {
	u *ui

	budgetSlider *widget.Slider
	budget       *widget.Entry
	maxLoaded    *widget.Entry
	numCtx       *widget.Entry
	gpuOnly      *widget.Check
	loadTimeout  *widget.Entry
	url          *widget.Entry
	pinned       *widget.CheckGroup
	notify       *widget.Check
	autostart    *widget.Check
	save         *widget.Button
	result       *widget.Label

	items   map[string]*widget.FormItem
	form    *fyne.Container
	fields  *widget.Form
	syncing bool // set while one budget widget updates the other
	total   uint64
}

const gibF = float64(1 << 30)

func newSettingsForm(u *ui) *settingsForm {
	f := &settingsForm{u: u, items: map[string]*widget.FormItem{}}
	f.budgetSlider = widget.NewSlider(0.5, 8)
	f.budgetSlider.Step = 0.1
	f.budget = widget.NewEntry()
	f.budget.SetPlaceHolder("total − 1 GiB (e.g. 7GiB, 7000MB, 80%)")
	f.budgetSlider.OnChanged = func(v float64) {
		if f.syncing {
			return
		}
		f.syncing = true
		f.budget.SetText(strconv.FormatFloat(v, 'f', 1, 64) + "GiB")
		f.syncing = false
	}
	f.budget.OnChanged = func(s string) {
		if f.syncing {
			return
		}
		f.syncing = true
		f.syncSlider(s)
		f.syncing = false
	}
	f.maxLoaded = widget.NewEntry()
	f.numCtx = widget.NewEntry()
	f.gpuOnly = widget.NewCheck("Keep models off the CPU: load a smaller context, or another model, instead", nil)
	f.loadTimeout = widget.NewEntry()
	f.loadTimeout.SetPlaceHolder("grows with the model's size (e.g. 90s, 5m)")
	f.url = widget.NewEntry()
	f.url.SetPlaceHolder("OLLAMA_HOST, or http://127.0.0.1:11434")
	f.pinned = widget.NewCheckGroup(nil, nil)
	f.notify = widget.NewCheck("Show notifications", nil)
	f.autostart = widget.NewCheck("Start VRAM Keeper when I log in", nil)
	f.save = widget.NewButton("Save", func() { _ = f.submit() })
	f.save.Importance = widget.HighImportance
	f.result = widget.NewLabel("")
	f.result.Wrapping = fyne.TextWrapWord

	add := func(key, label string, w fyne.CanvasObject) *widget.FormItem {
		it := widget.NewFormItem(label, w)
		f.items[key] = it
		return it
	}
	f.fields = widget.NewForm(
		add("budget", "Budget", container.NewBorder(nil, nil, nil, container.NewGridWrap(fyne.NewSize(160, 36), f.budget), f.budgetSlider)),
		add("max_loaded", "Max loaded", f.maxLoaded),
		add("context_length", "Context length", f.numCtx),
		add("gpu_only", "GPU only", f.gpuOnly),
		add("load_timeout", "Load timeout", f.loadTimeout),
		add("ollama_url", "Ollama URL", f.url),
		add("pinned", "Pinned models", f.pinned),
		add("notifications", "Notifications", f.notify),
		add("autostart", "Start on login", f.autostart),
	)
	f.form = container.NewVBox(f.fields, container.NewHBox(f.save), f.result)
	f.load(u.cfg)
	f.autostart.SetChecked(autostartEnabled())
	return f
}

// load puts a config into the widgets.
func (f *settingsForm) load(c config.Config) {
	f.syncing = true
	f.budget.SetText(c.Budget)
	f.syncSlider(c.Budget)
	f.syncing = false
	f.maxLoaded.SetText(strconv.Itoa(c.MaxLoaded))
	f.numCtx.SetText(strconv.Itoa(c.ContextLength))
	f.gpuOnly.SetChecked(c.GPUOnly)
	f.loadTimeout.SetText(c.LoadTimeout)
	f.url.SetText(c.OllamaURL)
	f.setPinnedOptions(c.Pinned)
	f.pinned.SetSelected(slices.Clone(c.Pinned))
	f.notify.SetChecked(c.Notifications)
}

func (f *settingsForm) syncSlider(s string) {
	if sz, err := config.ParseSize(s); err == nil {
		f.budgetSlider.SetValue(float64(sz.Resolve(f.cardSize())) / gibF)
	}
}

func (f *settingsForm) cardSize() uint64 {
	if f.total > 0 {
		return f.total
	}
	return f.u.cfg.VRAMBytes()
}

// update follows the manager: the slider spans the card, and every
// discovered model can be pinned.
func (f *settingsForm) update(s manager.Snapshot) {
	if s.VRAM.Total > 0 && s.VRAM.Total != f.total {
		f.total = s.VRAM.Total
		f.budgetSlider.Max = float64(s.VRAM.Total) / gibF
		f.syncing = true
		f.syncSlider(f.budget.Text)
		f.syncing = false
		f.budgetSlider.Refresh()
	}
	var names []string
	for _, m := range s.Models {
		names = append(names, m.Name)
	}
	f.setPinnedOptions(names)
}

func (f *settingsForm) setPinnedOptions(names []string) {
	set := map[string]bool{}
	for _, n := range append(slices.Clone(f.pinned.Options), names...) {
		set[n] = true
	}
	opts := slices.Sorted(maps.Keys(set))
	if !slices.Equal(opts, f.pinned.Options) {
		f.pinned.Options = opts
		f.pinned.Refresh()
	}
}

// collect reads the widgets into a config, starting from the current one
// so keys without a widget (listen, token, tasks) are kept. errs maps a
// config key to what is wrong with it.
func (f *settingsForm) collect() (config.Config, map[string]string) {
	c := f.u.cfg
	c.Pinned = slices.Clone(c.Pinned)
	errs := map[string]string{}
	c.Budget = strings.TrimSpace(f.budget.Text)
	atoi := func(key, s string) int {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			errs[key] = fmt.Sprintf("%q is not a whole number", s)
		}
		return n
	}
	c.MaxLoaded = atoi("max_loaded", f.maxLoaded.Text)
	c.ContextLength = atoi("context_length", f.numCtx.Text)
	c.GPUOnly = f.gpuOnly.Checked
	c.LoadTimeout = strings.TrimSpace(f.loadTimeout.Text)
	c.OllamaURL = strings.TrimSpace(f.url.Text)
	c.Pinned = slices.Clone(f.pinned.Selected)
	slices.Sort(c.Pinned)
	c.Notifications = f.notify.Checked
	for _, err := range unjoin(c.Validate()) {
		key, msg, ok := strings.Cut(err.Error(), ": ")
		if !ok {
			key, msg = "", err.Error()
		}
		if _, dup := errs[key]; !dup {
			errs[key] = msg
		}
	}
	return c, errs
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// submit validates the form and, when it is valid, saves the config file,
// applies the settings to the running manager and sets the autostart
// entry. Errors are shown next to their field.
func (f *settingsForm) submit() error {
	c, errs := f.collect()
	for key, it := range f.items {
		it.HintText = errs[key]
	}
	f.fields.Refresh()
	if len(errs) > 0 {
		var all []string
		for _, k := range slices.Sorted(maps.Keys(errs)) {
			all = append(all, k+": "+errs[k])
		}
		f.result.Importance = widget.DangerImportance
		f.result.SetText("Not saved: " + strings.Join(all, "; "))
		return errors.New(strings.Join(all, "; "))
	}
	var problems []string
	if err := f.u.saveConfig(c); err != nil {
		problems = append(problems, err.Error())
	}
	if err := setAutostart(f.autostart.Checked); err != nil {
		problems = append(problems, err.Error())
	}
	old := f.u.cfg
	f.u.cfg = c
	f.applyToManager(old, c)
	msg := "Saved"
	if f.u.opt.ConfigPath != "" {
		msg += " to " + f.u.opt.ConfigPath
	}
	if c.OllamaURL != old.OllamaURL {
		msg += ". The new Ollama URL takes effect when VRAM Keeper restarts"
	}
	f.result.Importance = widget.SuccessImportance
	if len(problems) > 0 {
		f.result.Importance = widget.DangerImportance
		msg = strings.Join(problems, "; ")
	}
	f.result.SetText(msg + ".")
	if len(problems) > 0 {
		return errors.New(msg)
	}
	return nil
}

// applyToManager sends the running manager what the form changed, and
// only that: a setting the form did not touch (a budget given on the
// command line, say) stays as it is.
func (f *settingsForm) applyToManager(old, c config.Config) {
	p, err := settingsPatch(old, c)
	k := f.u.keeper
	if ctxs, cerr := c.Contexts(); cerr == nil {
		p.Contexts = manager.ContextsPatch(k.Snapshot().Settings.Contexts, ctxs)
	} else {
		err = errors.Join(err, cerr)
	}
	add, remove := diff(old.Pinned, c.Pinned)
	f.u.call("Applying settings", func(ctx context.Context) error {
		errs := []error{err}
		for _, n := range add {
			errs = append(errs, ignoreUnknown(k.SetPinned(ctx, n, true)))
		}
		for _, n := range remove {
			errs = append(errs, ignoreUnknown(k.SetPinned(ctx, n, false)))
		}
		if !p.IsZero() {
			errs = append(errs, k.Apply(ctx, p))
		}
		return errors.Join(errs...)
	})
}

// settingsPatch is the change from the settings in old to those in c, for
// the fields the running manager takes.
func settingsPatch(old, c config.Config) (manager.SettingsPatch, error) {
	var p manager.SettingsPatch
	var errs []error
	if c.Budget != old.Budget {
		var size config.Size // "": the default
		if c.Budget != "" {
			var err error
			size, err = config.ParseSize(c.Budget)
			errs = append(errs, err)
		}
		p.Budget = &size
	}
	if c.ModelLimit() != old.ModelLimit() {
		n := c.ModelLimit()
		p.MaxLoaded = &n
	}
	if c.ContextLength != old.ContextLength {
		p.NumCtx = &c.ContextLength
	}
	if c.GPUOnly != old.GPUOnly {
		p.GPUOnly = &c.GPUOnly
	}
	if c.LoadTimeout != old.LoadTimeout {
		t, err := c.LoadTimeoutDuration()
		errs = append(errs, err)
		d := config.Duration(t)
		p.LoadTimeout = &d
	}
	return p, errors.Join(errs...)
}

// ignoreUnknown: a pinned model that is not installed (any more) is kept
// in the file for when it comes back; that is not an error.
func ignoreUnknown(err error) error {
	if errors.Is(err, manager.ErrModelUnknown) {
		return nil
	}
	return err
}

func diff(old, cur []string) (add, remove []string) {
	for _, n := range cur {
		if !slices.Contains(old, n) {
			add = append(add, n)
		}
	}
	for _, n := range old {
		if !slices.Contains(cur, n) {
			remove = append(remove, n)
		}
	}
	return add, remove
}
