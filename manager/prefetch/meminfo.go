package prefetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

var errNoMemAvailable = errors.New("no MemAvailable line")

// parseMemAvailable reads the "MemAvailable:  123456 kB" line.
func parseMemAvailable(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemAvailable" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("MemAvailable %q: want a number of kB", strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("MemAvailable %q: %w", fields[0], err)
		}
		if kb > math.MaxUint64/1024 {
			return 0, fmt.Errorf("MemAvailable %d kB overflows", kb)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoMemAvailable
}
