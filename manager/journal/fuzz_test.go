package journal

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzLinesBackwards: whatever a journal file holds, reading it backwards
// in chunks of any size gives the same lines as reading it forwards,
// reversed; a line longer than the cap may come as nil, never garbled.
func FuzzLinesBackwards(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"), uint8(3), uint16(100))
	f.Add([]byte("{\"a\":1}\n{\"b\":2"), uint8(1), uint16(4))
	f.Add([]byte("\n\n\nxyz\n\n"), uint8(2), uint16(1))
	f.Add([]byte("half{\"kind\":\n{\"kind\":\"loaded\"}\n"), uint8(7), uint16(8))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, maxLine uint16) {
		var want [][]byte
		for _, l := range bytes.Split(data, []byte{'\n'}) {
			if len(l) > 0 {
				want = append(want, l)
			}
		}
		slices.Reverse(want)
		var got [][]byte
		err := eachLineBackwards(bytes.NewReader(data), int64(len(data)), int64(chunk)+1, int64(maxLine), func(line []byte) bool {
			got = append(got, slices.Clone(line))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d lines backwards, %d forwards:\n%q\n%q", len(got), len(want), got, want)
		}
		for i := range want {
			if got[i] == nil && len(want[i]) > int(maxLine) {
				continue
			}
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("line %d from the end: %q, want %q", i, got[i], want[i])
			}
		}
	})
}
