package describe

import (
	"testing"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
)

func TestCardWords(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Card(manager.CardView{Card: card.Card{Name: "AMD Radeon RX 7600", Source: "amdgpu", Total: 8 * gib, Used: 3 * gib}, Others: 3 * gib}),
			"AMD Radeon RX 7600, amdgpu (kernel): 3.0 GiB of 8.0 GiB used, other programs 3.0 GiB"},
		{Card(manager.CardView{Card: card.Card{Name: "Intel GPU 8086:a780", Source: "i915", Integrated: true}}),
			"Intel GPU 8086:a780, i915 (kernel): 0 B of 0 B used (integrated, shares system memory: not budgeted)"},
		{Placement(manager.ModelView{Card: "AMD Radeon RX 6700 XT", CardCount: 1}), " on AMD Radeon RX 6700 XT"},
		{Placement(manager.ModelView{CardCount: 2}), " over 2 cards"},
		{Placement(manager.ModelView{}), ""},
		{Accounting(manager.Snapshot{Version: "0.17.4", Accounting: "v0.17"}), ""},
		{Accounting(manager.Snapshot{Version: "0.0.0", Accounting: "v0.30+"}), "version unstamped: v0.30+ accounting assumed until a model loads"},
		{Accounting(manager.Snapshot{Version: "0.0.0", Accounting: "v0.18-v0.29", AccountingFrom: "tiny:latest"}),
			"v0.18-v0.29 accounting, inferred from the load of tiny:latest"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
