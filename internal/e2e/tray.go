package e2e

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// IconPixmap reads the item's IconPixmap property and returns its largest
// image. The pixels are ARGB32 in network byte order, per the
// StatusNotifierItem spec.
func (d *Desktop) IconPixmap(it Item) (*image.NRGBA, error) {
	v, err := d.conn.Object(it.Service, it.Path).GetProperty(itemInterface + ".IconPixmap")
	if err != nil {
		return nil, fmt.Errorf("reading IconPixmap: %w", err)
	}
	var pixmaps []struct {
		W, H int32
		Pix  []byte
	}
	if err := dbus.Store([]any{v.Value()}, &pixmaps); err != nil {
		return nil, fmt.Errorf("decoding IconPixmap %s: %w", v.Signature(), err)
	}
	best := -1
	for i, p := range pixmaps {
		if int(p.W)*int(p.H)*4 != len(p.Pix) || p.W <= 0 {
			return nil, fmt.Errorf("IconPixmap %d: %dx%d with %d bytes", i, p.W, p.H, len(p.Pix))
		}
		if best < 0 || p.W > pixmaps[best].W {
			best = i
		}
	}
	if best < 0 {
		return nil, fmt.Errorf("IconPixmap is empty")
	}
	p := pixmaps[best]
	img := image.NewNRGBA(image.Rect(0, 0, int(p.W), int(p.H)))
	for i := 0; i < len(p.Pix); i += 4 {
		img.Set((i/4)%int(p.W), (i/4)/int(p.W), color.NRGBA{R: p.Pix[i+1], G: p.Pix[i+2], B: p.Pix[i+3], A: p.Pix[i]})
	}
	return img, nil
}

// MenuItem is one com.canonical.dbusmenu item.
type MenuItem struct {
	ID       int32
	Label    string
	Enabled  bool
	Children []MenuItem
}

// String renders the menu as an indented list, for failure messages.
func (m MenuItem) String() string {
	var b strings.Builder
	var walk func(MenuItem, int)
	walk = func(m MenuItem, depth int) {
		if depth > 0 {
			label := m.Label
			if label == "" {
				label = "----"
			}
			fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth-1), label)
			if !m.Enabled {
				b.WriteString(" (disabled)")
			}
			b.WriteByte('\n')
		}
		for _, c := range m.Children {
			walk(c, depth+1)
		}
	}
	walk(m, 0)
	return b.String()
}

// Find returns the first item, depth first, whose label path matches: each
// element is a prefix of the label at that level ("Load best for", "chat").
func (m MenuItem) Find(path ...string) (MenuItem, bool) {
	if len(path) == 0 {
		return m, true
	}
	for _, c := range m.Children {
		if strings.HasPrefix(c.Label, path[0]) {
			if f, ok := c.Find(path[1:]...); ok {
				return f, true
			}
		}
	}
	return MenuItem{}, false
}

// Labels are the top-level labels.
func (m MenuItem) Labels() []string {
	var out []string
	for _, c := range m.Children {
		out = append(out, c.Label)
	}
	return out
}

func (d *Desktop) menuObject(it Item) (dbus.BusObject, error) {
	v, err := d.conn.Object(it.Service, it.Path).GetProperty(itemInterface + ".Menu")
	if err != nil {
		return nil, fmt.Errorf("reading the item's Menu: %w", err)
	}
	p, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		return nil, fmt.Errorf("item's Menu is %s, not an object path", v.Signature())
	}
	return d.conn.Object(it.Service, p), nil
}

// Menu reads the whole menu with GetLayout(0, -1, []).
func (d *Desktop) Menu(it Item) (MenuItem, error) {
	obj, err := d.menuObject(it)
	if err != nil {
		return MenuItem{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), busCallTimeout)
	defer cancel()
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	if err := obj.CallWithContext(ctx, menuInterface+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		return MenuItem{}, fmt.Errorf("GetLayout: %w", err)
	}
	return menuNode(root.ID, root.Props, root.Children)
}

// menuNode converts one layout node; children arrive as variants holding
// (ia{sv}av) structs, which godbus gives as []any.
func menuNode(id int32, props map[string]dbus.Variant, children []dbus.Variant) (MenuItem, error) {
	m := MenuItem{ID: id, Enabled: true}
	if v, ok := props["label"]; ok {
		m.Label, _ = v.Value().(string)
	}
	if v, ok := props["enabled"]; ok {
		if b, ok := v.Value().(bool); ok {
			m.Enabled = b
		}
	}
	for _, c := range children {
		f, ok := c.Value().([]any)
		if !ok || len(f) != 3 {
			return m, fmt.Errorf("menu item %d: child is %s, want (ia{sv}av)", id, c.Signature())
		}
		cid, ok1 := f[0].(int32)
		cprops, ok2 := f[1].(map[string]dbus.Variant)
		ckids, ok3 := f[2].([]dbus.Variant)
		if !ok1 || !ok2 || !ok3 {
			return m, fmt.Errorf("menu item %d: child is %s, want (ia{sv}av)", id, c.Signature())
		}
		child, err := menuNode(cid, cprops, ckids)
		if err != nil {
			return m, err
		}
		m.Children = append(m.Children, child)
	}
	return m, nil
}

// Click sends Event(id, "clicked") as a tray host does when the user picks
// a menu item.
func (d *Desktop) Click(it Item, id int32) error {
	obj, err := d.menuObject(it)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), busCallTimeout)
	defer cancel()
	call := obj.CallWithContext(ctx, menuInterface+".Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		return fmt.Errorf("Event(%d, clicked): %w", id, call.Err)
	}
	return nil
}
