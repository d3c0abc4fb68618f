package eventlog

import "github.com/sheetlog/sheetlog/internal/jsonscan"

// ValidateEntry runs on every append; the member names it reads are
// interned so that reading them allocates nothing.
func init() {
	jsonscan.Intern("type", "snapshot", "history", "pending")
}
