package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/cell"
)

// The text form of a value, shared by import, export and set
// (clients.md), so that a round trip of a file already in that form is
// exact.

// valueRules is `sheetctl import --help`'s account of the rules.
const valueRules = `How a field becomes a value (import), and a value a field (export):
  - an empty field writes nothing (the cell is left as it is);
  - a number only when the field is a plain decimal: an optional "-",
    digits with no leading zero unless the integer part is a lone "0",
    an optional fraction ("0", "-12", "3.10", "0.5"), no exponent;
    "3.10" is the number 3.1, exported as "3.1", while "007", zip codes,
    "1e5", "+1", ".5", "1." and "NaN" stay text; export writes numbers in
    their shortest plain decimal form, never with an exponent;
  - TRUE or FALSE, in any case, is a boolean (exported TRUE and FALSE);
  - a cell error code (#NULL! #DIV/0! #VALUE! #REF! #NAME? #NUM! #N/A
    #GETTING_DATA #SPILL! #UNKNOWN! #FIELD! #CALC!) is that error;
  - anything else is a string, exactly as it is (no trimming).
  A null value is exported as an empty field (--json keeps it).
  In XLSX files, number and boolean cells keep their types; a text cell
  is a string unless it is exactly an error code (errors are written to
  XLSX as text).`

// isPlainDecimal is the number rule of import.
func isPlainDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := i - start
	if n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i] != '.' {
		return false
	}
	i++
	frac := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i > frac && i == len(s)
}

// parseField turns an import field into a value: ok is false for an empty
// field (write nothing).
func parseField(s string) (v cell.Value, ok bool) {
	switch {
	case s == "":
		return cell.Value{}, false
	case isPlainDecimal(s):
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && !math.IsInf(f, 0) {
			v, _ := cell.NumberValue(f)
			return v, true
		}
	case strings.EqualFold(s, "true"):
		return cell.BoolValue(true), true
	case strings.EqualFold(s, "false"):
		return cell.BoolValue(false), true
	case cell.IsErrorCode(s):
		v, _ := cell.ErrorValue(s)
		return v, true
	}
	return cell.StringValue(s), true
}

// parseSetValue is set's VALUE: as an import field, and "null" is null.
// An empty VALUE is the empty string.
func parseSetValue(s string) cell.Value {
	if s == "null" {
		return cell.NullValue()
	}
	if v, ok := parseField(s); ok {
		return v
	}
	return cell.StringValue("")
}

// formatNumber is a number's shortest plain decimal form.
func formatNumber(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// formatValue is a value's export field.
func formatValue(v cell.Value) string {
	switch v.Kind() {
	case cell.Number:
		return formatNumber(v.NumberVal())
	case cell.Bool:
		if v.BoolVal() {
			return "TRUE"
		}
		return "FALSE"
	case cell.String, cell.Error:
		return v.StringVal()
	}
	return "" // absent or null
}
