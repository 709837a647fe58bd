package validate

import (
	"strconv"
	"strings"
)

// checkPrimitive checks a primitive's JSON value against its type: the JSON
// type R4 §2.6.2.1 prescribes (boolean → true/false, integer and decimal →
// number, everything else → string) and the lexical form of the type's regex
// in the core package (R4 §2.24.0.1), reimplemented as plain Go so that it
// costs nothing per request. It returns a reason when the value is invalid,
// or "".
func checkPrimitive(typ string, n *node) string {
	switch typ {
	case "boolean":
		if n.kind != kTrue && n.kind != kFalse {
			return "must be a JSON boolean, not " + describe(n)
		}
		return ""
	case "integer", "positiveInt", "unsignedInt":
		if n.kind != kNumber {
			return "must be a JSON number, not " + describe(n)
		}
		// The JSON grammar already held; an integer has no fraction or
		// exponent and fits in 32 bits (R4 §2.24.0.1 integer).
		v, err := strconv.ParseInt(n.str, 10, 32)
		switch {
		case err != nil:
			return "is not a 32-bit integer: " + n.str
		case typ == "positiveInt" && v < 1:
			return "must be a positive integer: " + n.str
		case typ == "unsignedInt" && v < 0:
			return "must not be negative: " + n.str
		}
		return ""
	case "decimal":
		if n.kind != kNumber {
			return "must be a JSON number, not " + describe(n)
		}
		return "" // the JSON number grammar is the decimal regex
	}
	if n.kind != kString {
		return "must be a JSON string, not " + describe(n)
	}
	s := n.str
	if s == "" {
		return "must not be empty" // R4 §2.6.2.1: no empty strings
	}
	var ok bool
	switch typ {
	case "string", "markdown":
		ok = len(s) <= 1<<20 && !allSpace(s)
	case "xhtml":
		ok = strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "<div")
	case "code":
		ok = isCode(s)
	case "id":
		ok = isID(s)
	case "uri", "url", "canonical":
		ok = !strings.ContainsAny(s, " \t\r\n\f\v")
	case "oid":
		ok = isOID(s)
	case "uuid":
		ok = isUUID(s)
	case "date":
		ok = isDateTime(s, dateOnly)
	case "dateTime":
		ok = isDateTime(s, dateTime)
	case "instant":
		ok = isDateTime(s, instant)
	case "time":
		ok = isTime(s)
	case "base64Binary":
		ok = isBase64(s)
	default:
		ok = true // a type we do not know lexically has only its JSON type checked
	}
	if !ok {
		return "is not a valid " + typ + ": " + quote(s)
	}
	return ""
}

func describe(n *node) string {
	switch n.kind {
	case kString:
		return "a string"
	case kNumber:
		return "a number"
	case kArray:
		return "an array"
	case kObject:
		return "an object"
	case kNull:
		return "null"
	}
	return "a boolean"
}

// quote renders a value for a diagnostic, shortened so that an outcome never
// echoes a large body back.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

func allSpace(s string) bool {
	return strings.TrimLeft(s, " \t\r\n") == ""
}

// isCode: [^\s]+(\s[^\s]+)* — no leading, trailing or doubled whitespace.
func isCode(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		sp := isSpace(s[i])
		if sp && prevSpace {
			return false
		}
		prevSpace = sp
	}
	return !prevSpace
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isID: [A-Za-z0-9\-\.]{1,64}
func isID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isOID: urn:oid:[0-2](\.(0|[1-9][0-9]*))+
func isOID(s string) bool {
	rest, ok := strings.CutPrefix(s, "urn:oid:")
	if !ok || len(rest) < 3 || rest[0] < '0' || rest[0] > '2' {
		return false
	}
	arcs := strings.Split(rest[1:], ".")
	if arcs[0] != "" || len(arcs) < 2 {
		return false
	}
	for _, a := range arcs[1:] {
		if a == "" || (a[0] == '0' && len(a) > 1) || !digits(a) {
			return false
		}
	}
	return true
}

// isUUID: urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}
func isUUID(s string) bool {
	rest, ok := strings.CutPrefix(s, "urn:uuid:")
	if !ok || len(rest) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := rest[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

type dateKind int

const (
	dateOnly dateKind = iota // YYYY, YYYY-MM, YYYY-MM-DD
	dateTime                 // a date, or a full date with a time and a zone
	instant                  // a full date, time and zone
)

// isDateTime checks the date, dateTime and instant forms of R4 §2.24.0.1:
// year 0001-9999, a real day of the month, a time only on a full date and
// then with seconds and a zone (Z or ±hh:mm up to 14:00).
func isDateTime(s string, k dateKind) bool {
	if len(s) < 4 || !digits(s[:4]) || s[:4] == "0000" {
		return false
	}
	year, _ := strconv.Atoi(s[:4])
	s = s[4:]
	if s == "" {
		return k != instant
	}
	if len(s) < 3 || s[0] != '-' || !digits(s[1:3]) {
		return false
	}
	month, _ := strconv.Atoi(s[1:3])
	if month < 1 || month > 12 {
		return false
	}
	s = s[3:]
	if s == "" {
		return k != instant
	}
	if len(s) < 3 || s[0] != '-' || !digits(s[1:3]) {
		return false
	}
	day, _ := strconv.Atoi(s[1:3])
	if day < 1 || day > daysIn(year, month) {
		return false
	}
	s = s[3:]
	if s == "" {
		return k != instant
	}
	if k == dateOnly || s[0] != 'T' {
		return false
	}
	s = s[1:]
	// hh:mm:ss(.fff)? then the zone.
	i := 8
	if len(s) < i || !isTime(s[:i]) {
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return false
		}
		i = j
	}
	zone := s[i:]
	if zone == "Z" {
		return true
	}
	if len(zone) != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' || !digits(zone[1:3]) || !digits(zone[4:6]) {
		return false
	}
	hh, _ := strconv.Atoi(zone[1:3])
	mm, _ := strconv.Atoi(zone[4:6])
	return (hh <= 13 && mm <= 59) || (hh == 14 && mm == 0)
}

// isTime: ([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?
func isTime(s string) bool {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' || !digits(s[0:2]) || !digits(s[3:5]) || !digits(s[6:8]) {
		return false
	}
	if s[0:2] > "23" || s[3:5] > "59" || s[6:8] > "60" {
		return false
	}
	if len(s) == 8 {
		return true
	}
	return s[8] == '.' && digits(s[9:])
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// isBase64: (\s*([0-9a-zA-Z\+/=]){4}\s*)+ — groups of four base64
// characters with optional whitespace; padding only at the end.
func isBase64(s string) bool {
	n, pad := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSpace(c):
			continue
		case c == '=':
			pad++
		case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/':
			if pad > 0 {
				return false
			}
		default:
			return false
		}
		n++
	}
	return n > 0 && n%4 == 0 && pad <= 2
}
