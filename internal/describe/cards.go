package describe

import (
	"fmt"

	"github.com/vramkeeper/vramkeeper/manager"
	"github.com/vramkeeper/vramkeeper/manager/card"
	"github.com/vramkeeper/vramkeeper/manager/config"
	"github.com/vramkeeper/vramkeeper/manager/estimate"
)

// Card says one card of several: "AMD Radeon RX 7600, amdgpu (kernel):
// 3.1 GiB of 8.0 GiB used, other programs 3.1 GiB".
func Card(c manager.CardView) string {
	s := fmt.Sprintf("%s, %s: %s of %s used", c.Name, card.SourceLabel(c.Source),
		config.FormatBytes(c.Used), config.FormatBytes(c.Total))
	if c.Others > 0 {
		s += ", other programs " + config.FormatBytes(c.Others)
	}
	if c.Integrated {
		s += " (integrated, shares system memory: not budgeted)"
	}
	return s
}

// Placement says where Ollama would put a model on a machine with several
// cards: " on AMD Radeon RX 6700 XT", " over 2 cards"; "" with one card.
func Placement(m manager.ModelView) string {
	switch {
	case m.Card != "":
		return " on " + m.Card
	case m.CardCount > 1:
		return fmt.Sprintf(" over %d cards", m.CardCount)
	}
	return ""
}

// Accounting says whose memory accounting the estimates follow when the
// server's version does not say it (a build from source answers 0.0.0):
// inferred from a load, or assumed until one. "" for a released version.
func Accounting(s manager.Snapshot) string {
	switch {
	case s.Version == "" || estimate.Stamped(s.Version):
		return ""
	case s.AccountingFrom != "":
		return fmt.Sprintf("%s accounting, inferred from the load of %s", s.Accounting, s.AccountingFrom)
	}
	return fmt.Sprintf("version unstamped: %s accounting assumed until a model loads", s.Accounting)
}
