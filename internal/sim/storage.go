package sim

import (
	"slices"
	"time"
)

// Storage is where loads read model files from: the operating system's
// page cache in front of a disk. A load reads the whole file; the part in
// the cache comes from RAM, the rest from the disk, and afterwards the
// whole file is cached (least recently read files make room).
type Storage struct {
	// CacheBytes is the RAM the page cache can give model files.
	CacheBytes uint64
	Cost       SwapCost
	// PrefetchRate is how fast the prefetcher reads a file from disk into
	// the cache, in bytes per second.
	PrefetchRate float64
	// IdleAfter is how long after a request (and its load) the manager
	// waits before it counts as idle and starts prefetching.
	IdleAfter time.Duration
}

// SwapCost is the time a swap takes, from a request for a model that is not
// loaded to its first token, as a linear model of the bytes its file
// yields from disk and from the page cache (fitted to measured swaps).
type SwapCost struct {
	Fixed time.Duration
	// ColdPerGB and WarmPerGB are the seconds each 10⁹ bytes read from
	// disk and from the cache add.
	ColdPerGB, WarmPerGB float64
}

// Time is the swap time for a file with cold bytes on disk and warm bytes
// in the cache.
func (c SwapCost) Time(cold, warm uint64) time.Duration {
	s := c.ColdPerGB*float64(cold)/1e9 + c.WarmPerGB*float64(warm)/1e9
	return c.Fixed + time.Duration(s*float64(time.Second))
}

// pageCache tracks which model files the cache holds, least recently read
// first; a file may be partly cached (a prefetch cut short).
type pageCache struct {
	cap      uint64
	used     uint64
	resident map[string]uint64
	order    []string // least recently read first
}

func newPageCache(capacity uint64) *pageCache {
	return &pageCache{cap: capacity, resident: map[string]uint64{}}
}

func (pc *pageCache) has(name string) uint64 { return pc.resident[name] }

// fill makes up to add more bytes of name (size bytes in all) resident and
// most recent, evicting least recent files for room; it returns the bytes
// added.
func (pc *pageCache) fill(name string, size, add uint64) uint64 {
	have := pc.resident[name]
	add = min(add, size-have, pc.cap-have)
	pc.order = slices.DeleteFunc(pc.order, func(n string) bool { return n == name })
	for pc.used+add > pc.cap && len(pc.order) > 0 {
		old := pc.order[0]
		pc.order = pc.order[1:]
		pc.used -= pc.resident[old]
		delete(pc.resident, old)
	}
	pc.resident[name] = have + add
	pc.used += add
	pc.order = append(pc.order, name)
	return add
}
