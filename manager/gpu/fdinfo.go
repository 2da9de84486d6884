package gpu

import (
	"math/bits"
	"strconv"
	"strings"
)

// drmClient is what one DRM file descriptor's fdinfo says (the kernel's
// Documentation/gpu/drm-usage-stats.rst): the driver, the card, the client
// and the memory it holds per region.
type drmClient struct {
	driver string // drm-driver
	pdev   string // drm-pdev (PCI slot); "pdev" on amdgpu before 5.19
	id     uint64 // drm-client-id: one per struct drm_file, shared by dup'd and inherited fds
	hasID  bool
	// regions maps a memory region ("vram", "gtt", "vram0", "local0",
	// "system0") to what the client holds there.
	regions map[string]regionUse
}

// regionUse is one region's keys. Kernels differ in which they print:
// amdgpu printed drm-memory-<region> (resident bytes) alone until 6.13,
// both it and drm-total/drm-resident after; xe and i915 print
// drm-total/drm-resident only; amdgpu 5.14–5.18 printed "vram mem".
type regionUse struct {
	total, resident, memory uint64
	has                     uint8 // hasTotal | hasResident | hasMemory
}

const (
	hasTotal uint8 = 1 << iota
	hasResident
	hasMemory
)

// bytes is what the client holds in the region on the card now: what is
// resident there when the kernel says, else the legacy key (resident by
// definition), else everything allocated for the region.
func (u regionUse) bytes() uint64 {
	switch {
	case u.has&hasResident != 0:
		return u.resident
	case u.has&hasMemory != 0:
		return u.memory
	}
	return u.total
}

// parseFDInfo reads one /proc/PID/fdinfo/N. Lines that are not DRM keys
// (pos, flags, mnt_id, ino) or that do not parse are skipped: the format is
// "key:<whitespace>value[ unit]", and a driver may add keys of its own.
func parseFDInfo(text string) drmClient {
	var c drmClient
	for line := range strings.Lines(text) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case key == "drm-driver":
			c.driver = val
		case key == "drm-pdev" || key == "pdev":
			c.pdev = strings.ToLower(val)
		case key == "drm-client-id":
			if id, err := strconv.ParseUint(val, 10, 64); err == nil {
				c.id, c.hasID = id, true
			}
		case key == "vram mem":
			c.setRegion("vram", hasMemory, val)
		case strings.HasPrefix(key, "drm-total-"):
			c.setRegion(strings.TrimPrefix(key, "drm-total-"), hasTotal, val)
		case strings.HasPrefix(key, "drm-resident-"):
			c.setRegion(strings.TrimPrefix(key, "drm-resident-"), hasResident, val)
		case strings.HasPrefix(key, "drm-memory-"):
			c.setRegion(strings.TrimPrefix(key, "drm-memory-"), hasMemory, val)
		}
	}
	return c
}

func (c *drmClient) setRegion(region string, kind uint8, val string) {
	n, ok := parseSize(val)
	if !ok || region == "" {
		return
	}
	if c.regions == nil {
		c.regions = map[string]regionUse{}
	}
	u := c.regions[region]
	switch kind {
	case hasTotal:
		u.total = n
	case hasResident:
		u.resident = n
	case hasMemory:
		u.memory = n
	}
	u.has |= kind
	c.regions[region] = u
}

// parseSize reads "<uint>[ KiB|MiB|GiB|kB]": bytes by default, as the
// usage-stats document says; "kB" is the old amdgpu "vram mem" line.
func parseSize(val string) (uint64, bool) {
	num, unit, _ := strings.Cut(val, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, false
	}
	var shift uint
	switch strings.TrimSpace(unit) {
	case "":
	case "KiB", "kB":
		shift = 10
	case "MiB":
		shift = 20
	case "GiB":
		shift = 30
	default:
		return 0, false
	}
	if shift > 0 && bits.LeadingZeros64(n) < int(shift) {
		return 0, false // would overflow
	}
	return n << shift, true
}

// deviceBytes is what the client holds in the card's own memory: amdgpu's
// "vram", xe's "vram0", "vram1" (one per tile), i915's "local0".
func (c drmClient) deviceBytes() uint64 {
	local := "vram"
	if c.driver == "i915" {
		local = "local"
	}
	var sum uint64
	for region, u := range c.regions {
		rest, ok := strings.CutPrefix(region, local)
		if !ok || strings.Trim(rest, "0123456789") != "" {
			continue // "vram" and "vram0" are the card's; "vram-visible" or "gtt" are not
		}
		s, carry := bits.Add64(sum, u.bytes(), 0)
		if carry != 0 {
			return ^uint64(0)
		}
		sum = s
	}
	return sum
}
