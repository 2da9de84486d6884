package ollamatest

import "syscall"

// setParentDeathSignal has the kernel kill the server if the test binary
// dies without running its cleanups (panic, go test -timeout), so no server
// outlives its test.
func setParentDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGKILL
}
