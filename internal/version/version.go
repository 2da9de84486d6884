// Package version is this build's release, which scripts/package.sh sets
// at link time (-X) from FyneApp.toml; `go build` alone says "dev".
package version

import (
	"fmt"
	"runtime"
)

// Version is the release; set with
// -ldflags "-X github.com/vramkeeper/vramkeeper/internal/version.Version=0.1.0".
var Version = "dev"

// String is what `vramkeeper version` prints.
func String() string {
	return fmt.Sprintf("vramkeeper %s (%s/%s, %s)", Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
