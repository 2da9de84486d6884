package config

import (
	"fmt"
	"time"
)

// Duration is a time span written as Go writes one ("90s", "5m"), as the
// settings the API takes carry it; "" or "0s" is zero.
type Duration time.Duration

// MarshalText writes the duration as time.Duration's String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "90s", "5m", "" (zero); a negative one is refused.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a duration such as 90s or 5m", b)
	}
	*d = Duration(v)
	return nil
}
