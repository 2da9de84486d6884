package statefile

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzSalvage: whatever the bytes, Salvage returns without panicking; on a
// document encoding/json reads, it reads the same; and that document,
// written as Save writes it (no duplicate keys) and cut anywhere, gives
// back nothing that was not written.
func FuzzSalvage(f *testing.F) {
	whole, _ := json.Marshal(sampleState())
	f.Add(whole, uint(len(whole)/2))
	f.Add([]byte(`{"calibrations":{"a@1":4096,"a@1":5},"Calibrations":{"b@2":1e3}}`), uint(20))
	f.Add([]byte(`{"models":{"m":{"uses":1,"last_used":"2026-01-02T03:04:05Z"}},"models":{"n":{}}}`), uint(40))
	f.Add([]byte(`[{"x":1}]`), uint(3))
	f.Add([]byte("{\"calibrations\":{\"\\u00e9\\ud83d\\ude00\":1}}"), uint(30))
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		got, _ := Salvage[state](data)
		var want state
		if json.Unmarshal(data, &want) != nil {
			return
		}
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("valid document read differently:\n salvage %+v\n json    %+v", got, want)
		}
		canon, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		c := int(cut % uint(len(canon)+1))
		part, _ := Salvage[state](canon[:c])
		for k, v := range part.Calibrations {
			if w, ok := want.Calibrations[k]; !ok || w != v {
				t.Fatalf("cut at %d: calibration %q = %d, written %d (present %v)", c, k, v, w, ok)
			}
		}
		for k, v := range part.Models {
			if w, ok := want.Models[k]; !ok || !w.LastUsed.Equal(v.LastUsed) || w.Uses != v.Uses {
				t.Fatalf("cut at %d: model %q = %+v, written %+v (present %v)", c, k, v, w, ok)
			}
		}
	})
}
