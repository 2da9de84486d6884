//go:build !(linux && cgo) && !windows

package gpu

import (
	"fmt"
	"runtime"
)

// go-nvml needs cgo and dlopen; elsewhere (or built with CGO_ENABLED=0 on
// Linux) there is no NVML, and the note says why.
type noNVML struct{}

func newNVML() nvmlLib { return noNVML{} }

func (noNVML) Init() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("not supported on %s in this build", runtime.GOOS)
	}
	return fmt.Errorf("built without cgo, libnvidia-ml.so cannot be loaded")
}
func (noNVML) Shutdown() error                  { return nil }
func (noNVML) Devices() int                     { return 0 }
func (noNVML) Device(int) (device, error)       { return device{}, ErrUnavailable }
func (noNVML) Processes(int) ([]process, error) { return nil, ErrUnavailable }
