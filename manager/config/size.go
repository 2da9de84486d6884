package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a memory amount as the user wrote it: either absolute bytes or a
// percentage of the card, which only Resolve can turn into bytes.
type Size struct {
	Bytes   uint64  // absolute size; 0 when Percent is set
	Percent float64 // 1–100 of the card's total; 0 when Bytes is set
}

// Budget resolves s as a VRAM budget for a card of total bytes: the size
// or percentage, or total − 1 GiB when s is zero (all of a card of 1 GiB or
// less, which is too small to reserve from), never above total when total
// is known.
func (s Size) Budget(total uint64) uint64 {
	var b uint64
	switch {
	case !s.IsZero():
		b = s.Resolve(total)
	case total > defaultReserve:
		b = total - defaultReserve
	default:
		b = total
	}
	if total > 0 && b > total {
		b = total
	}
	return b
}

// IsZero reports whether s is the zero Size (nothing given).
func (s Size) IsZero() bool { return s.Bytes == 0 && s.Percent == 0 }

// Resolve returns the size in bytes for a card of total bytes.
func (s Size) Resolve(total uint64) uint64 {
	if s.Percent > 0 {
		return uint64(float64(total) * s.Percent / 100)
	}
	return s.Bytes
}

// String renders s the way FormatBytes does, or as "80%".
func (s Size) String() string {
	if s.Percent > 0 {
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return FormatBytes(s.Bytes)
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
	tib = 1 << 40
)

// unitScale maps a lower-cased unit to its multiplier. Units with an "i"
// (KiB, MiB, GiB, TiB) are binary and units ending in a plain "B" (KB, MB,
// GB, TB) are decimal, as the SI and IEC say. A bare letter ("7G", "512M")
// is binary: people sizing VRAM mean the numbers nvidia-smi and the vendor
// print, which are binary, so "8G" must mean an 8 GiB card. Kept in a
// function, not a package map, so nothing can change it.
func unitScale(u string) (float64, bool) {
	switch u {
	case "", "b":
		return 1, true
	case "k", "ki", "kib":
		return kib, true
	case "m", "mi", "mib":
		return mib, true
	case "g", "gi", "gib":
		return gib, true
	case "t", "ti", "tib":
		return tib, true
	case "kb":
		return 1e3, true
	case "mb":
		return 1e6, true
	case "gb":
		return 1e9, true
	case "tb":
		return 1e12, true
	}
	return 0, false
}

// ParseSize reads a memory size: "7GiB", "7 GiB", "7000MB", "7G", "512MiB",
// "1.5GiB", a plain byte count ("7516192768"), or a percentage of the card
// ("80%", 1–100). Case and spaces between number and unit do not matter.
// Zero is rejected: no VRAM size or budget of nothing makes sense.
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Size{}, fmt.Errorf("empty size (want e.g. 7GiB, 7000MB or 80%%)")
	}
	if num, ok := strings.CutSuffix(in, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) {
			return Size{}, fmt.Errorf("size %q: bad percentage", s)
		}
		if p < 1 || p > 100 {
			return Size{}, fmt.Errorf("size %q: percentage must be between 1 and 100", s)
		}
		return Size{Percent: p}, nil
	}
	// Split where the number ends: digits, one dot, no sign (negative sizes
	// are rejected by not parsing them).
	i := strings.IndexFunc(in, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(in)
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	if num == "" {
		return Size{}, fmt.Errorf("size %q: no number (want e.g. 7GiB, 7000MB or 80%%)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return Size{}, fmt.Errorf("size %q: bad number: %w", s, err)
	}
	scale, ok := unitScale(unit)
	if !ok {
		return Size{}, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB or %%)", s, in[i:])
	}
	b := math.Round(v * scale)
	if b >= math.MaxUint64 {
		return Size{}, fmt.Errorf("size %q: too large", s)
	}
	if b <= 0 {
		return Size{}, fmt.Errorf("size %q: must be more than zero", s)
	}
	return Size{Bytes: uint64(b)}, nil
}

// FormatBytes renders a byte count for labels: "7.0 GiB" from 1 GiB up (one
// decimal, since budgets differ by fractions of a gigabyte), "512 MiB" and
// "12 KiB" below, "100 B" for tiny numbers.
func FormatBytes(b uint64) string {
	switch {
	case b >= tib:
		return fmt.Sprintf("%.1f TiB", float64(b)/tib)
	case b >= gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	case b >= mib:
		return fmt.Sprintf("%.0f MiB", math.Floor(float64(b)/mib))
	case b >= kib:
		return fmt.Sprintf("%.0f KiB", math.Floor(float64(b)/kib))
	default:
		return fmt.Sprintf("%d B", b)
	}
}

// MarshalText writes s so that UnmarshalText reads back the same value:
// exact bytes, "80%", or "" for the zero Size (the default budget).
func (s Size) MarshalText() ([]byte, error) {
	switch {
	case s.Percent > 0:
		return []byte(s.String()), nil
	case s.Bytes > 0:
		return strconv.AppendUint(nil, s.Bytes, 10), nil
	}
	return []byte{}, nil
}

// UnmarshalText reads what ParseSize reads; "" is the zero Size.
func (s *Size) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = Size{}
		return nil
	}
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
