package gpu

// systemDrivers on Linux: NVML for NVIDIA's cards, the kernel's files for
// AMD's and Intel's.
func systemDrivers(r roots) []driver {
	return []driver{nvmlDriver{lib: newNVML()}, newDRM(r)}
}
