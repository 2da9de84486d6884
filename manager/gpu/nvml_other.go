//go:build !(linux && cgo)

package gpu

import (
	"fmt"
	"runtime"
)

// go-nvml needs cgo and dlopen; elsewhere (or built with CGO_ENABLED=0) the
// probe always uses the fallback, and says why.
type noDriver struct{}

func newDriver() driver { return noDriver{} }

func (noDriver) Init() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("NVML not supported on %s in this build", runtime.GOOS)
	}
	return fmt.Errorf("built without cgo, NVML cannot be loaded")
}
func (noDriver) Shutdown() error                  { return nil }
func (noDriver) Devices() int                     { return 0 }
func (noDriver) Device(int) (device, error)       { return device{}, ErrUnavailable }
func (noDriver) Processes(int) ([]process, error) { return nil, ErrUnavailable }
