package gpu

// systemDrivers on Windows: NVML (nvml.dll) for NVIDIA's cards, DXGI with
// the GPU performance counters for every vendor's (NVIDIA's are left to
// NVML when it answers).
func systemDrivers(roots) []driver {
	return []driver{nvmlDriver{lib: newNVML()}, newDXGI()}
}
