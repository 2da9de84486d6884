package plot

import (
	"hash/fnv"
	"image/color"
	"slices"
)

// modelColors are told apart at a glance and from the slate of other
// programs (Tableau 10 without its grey, plus a dark teal).
var modelColors = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, // blue
	{0xf2, 0x8e, 0x2b, 0xff}, // orange
	{0x59, 0xa1, 0x4f, 0xff}, // green
	{0xe1, 0x57, 0x59, 0xff}, // red
	{0xb0, 0x7a, 0xa1, 0xff}, // purple
	{0x76, 0xb7, 0xb2, 0xff}, // teal
	{0xed, 0xc9, 0x48, 0xff}, // yellow
	{0x9c, 0x75, 0x5f, 0xff}, // brown
	{0xff, 0x9d, 0xa7, 0xff}, // pink
	{0x49, 0x98, 0x94, 0xff}, // dark teal
}

// Palette gives each model its own colour and keeps it: the same name gets
// the same colour for the palette's life, so a model keeps its colour in
// the bar and the chart across redraws. A name prefers the slot its hash
// picks, so it usually has the same colour in every window and file too;
// a name whose slot is taken gets the next free one. Not safe for
// concurrent use.
type Palette struct {
	slot  map[string]int
	taken []bool
}

// NewPalette returns an empty palette.
func NewPalette() *Palette {
	return &Palette{slot: map[string]int{}, taken: make([]bool, len(modelColors))}
}

// Color is name's colour, assigned on first use.
func (p *Palette) Color(name string) color.RGBA {
	if i, ok := p.slot[name]; ok {
		return modelColors[i]
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	pref := int(h.Sum32() % uint32(len(modelColors)))
	i := pref
	for p.taken[i] {
		i = (i + 1) % len(modelColors)
		if i == pref {
			break // more models than colours: share the preferred one
		}
	}
	p.taken[i] = true
	p.slot[name] = i
	return modelColors[i]
}

// Colors assigns colours to names in sorted order (so two palettes fed
// the same names agree) and returns them.
func (p *Palette) Colors(names []string) map[string]color.RGBA {
	out := make(map[string]color.RGBA, len(names))
	for _, n := range slices.Sorted(slices.Values(names)) {
		out[n] = p.Color(n)
	}
	return out
}
