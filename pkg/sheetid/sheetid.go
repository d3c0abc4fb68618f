// Package sheetid validates spreadsheet ids. Every store keys its data by
// sheet id, so an id is checked once, here, before it reaches any key,
// path or prefix: no id can name another sheet's data or escape a
// directory.
package sheetid

import "github.com/sheetlog/sheetlog/pkg/errs"

// MaxLen is the longest valid sheet id.
const MaxLen = 64

// Validate reports whether id is 1 to 64 characters from A-Z a-z 0-9 . _ -
// and is not "." or "..". The error is an *errs.ValidationError.
func Validate(id string) error {
	if id == "" {
		return errs.Validation("sheet id is empty")
	}
	if len(id) > MaxLen {
		return errs.Validation("sheet id is %d characters long; at most %d are allowed", len(id), MaxLen)
	}
	if id == "." || id == ".." {
		return errs.Validation("sheet id %q is reserved", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return errs.Validation("sheet id contains %q at byte %d; only A-Z a-z 0-9 . _ - are allowed", c, i)
		}
	}
	return nil
}
