package gpu

import (
	"encoding/binary"
	"fmt"
)

// i915 has no sysfs file for its local memory: the size comes from the
// DRM_I915_QUERY_MEMORY_REGIONS query (include/uapi/drm/i915_drm.h):
//
//	struct drm_i915_query_memory_regions {
//		__u32 num_regions; __u32 rsvd[3];
//		struct drm_i915_memory_region_info regions[];
//	};
//	struct drm_i915_memory_region_info {          // 88 bytes
//		struct { __u16 memory_class, memory_instance; } region;
//		__u32 rsvd0;
//		__u64 probed_size;
//		__u64 unallocated_size; // probed_size without CAP_PERFMON
//		__u64 rsvd1[8];         // cpu-visible sizes on newer kernels
//	};
const (
	i915RegionsHeader = 16
	i915RegionInfo    = 88
	// i915MemoryDevice is I915_MEMORY_CLASS_DEVICE: the card's own memory.
	i915MemoryDevice = 1
)

// i915Region is one memory region of an i915 card.
type i915Region struct {
	class, instance uint16
	probed          uint64
	unallocated     uint64
}

// parseI915Regions reads the kernel's answer to the memory-regions query.
func parseI915Regions(b []byte) ([]i915Region, error) {
	if len(b) < i915RegionsHeader {
		return nil, fmt.Errorf("i915 memory regions: %d bytes, want at least %d", len(b), i915RegionsHeader)
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-i915RegionsHeader)/i915RegionInfo {
		return nil, fmt.Errorf("i915 memory regions: %d regions do not fit in %d bytes", n, len(b))
	}
	out := make([]i915Region, n)
	for i := range out {
		r := b[i915RegionsHeader+i*i915RegionInfo:]
		out[i] = i915Region{
			class: binary.LittleEndian.Uint16(r), instance: binary.LittleEndian.Uint16(r[2:]),
			probed: binary.LittleEndian.Uint64(r[8:]), unallocated: binary.LittleEndian.Uint64(r[16:]),
		}
	}
	return out, nil
}

// i915Local sums the card's own memory regions: total, and what is
// allocated when the kernel says (it reports nothing allocated to a
// process without CAP_PERFMON, so known is false then).
func i915Local(regions []i915Region) (total, used uint64, known bool) {
	for _, r := range regions {
		if r.class != i915MemoryDevice {
			continue
		}
		total += r.probed
		if r.unallocated < r.probed {
			used += r.probed - r.unallocated
			known = true
		}
	}
	return total, used, known
}
