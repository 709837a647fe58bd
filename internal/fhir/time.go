package fhir

import (
	"fmt"
	"regexp"
	"time"
)

// InstantPrecision is the precision of every instant the server makes:
// meta.lastUpdated, transaction times and the like. A transaction's clock
// is truncated to it so that what is stored and what is shown agree.
const InstantPrecision = time.Millisecond

// FormatInstant renders t as a FHIR instant in UTC with milliseconds.
func FormatInstant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Precision of a partial date or dateTime.
type Precision int

// The precisions a FHIR date, dateTime or instant can have.
const (
	Year Precision = iota
	Month
	Day
	Second // time given to the second or finer
)

// DateTime is a parsed FHIR date, dateTime or instant. Values without a time
// zone (dates and partial dates) are placed in UTC.
type DateTime struct {
	Time      time.Time
	Precision Precision
	// Fraction holds the number of fractional-second digits given (0 to 9).
	Fraction int
}

var dateTimePattern = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.([0-9]+))?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)

// ParseDateTime parses a FHIR date, dateTime (R4 datatypes.html#dateTime) or
// instant. A time, when present, must have a time zone, as R4 requires.
func ParseDateTime(s string) (DateTime, error) {
	m := dateTimePattern.FindStringSubmatch(s)
	if m == nil {
		return DateTime{}, fmt.Errorf("%q is not a valid FHIR date or dateTime", s)
	}
	var layout string
	var p Precision
	switch {
	case m[8] != "":
		layout, p = time.RFC3339Nano, Second
	case m[6] != "":
		layout, p = "2006-01-02", Day
	case m[4] != "":
		layout, p = "2006-01", Month
	default:
		layout, p = "2006", Year
	}
	str := s
	// m[12] holds the fractional digits, m[13] the zone.
	if p == Second && len(m[12]) > 9 { // Go parses at most 9 fractional digits
		str = s[:len(s)-len(m[13])-len(m[12])+9] + m[13]
	}
	if p == Second && m[10] == "60" { // leap second: R4 allows it, Go does not
		return DateTime{}, fmt.Errorf("%q: leap seconds are not supported", s)
	}
	t, err := time.Parse(layout, str)
	if err != nil {
		return DateTime{}, fmt.Errorf("%q is not a valid FHIR date or dateTime: %v", s, err)
	}
	return DateTime{Time: t, Precision: p, Fraction: min(len(m[12]), 9)}, nil
}

// Range is the half-open interval [Low, High) of instants a partial date
// or dateTime stands for: "2020" is all of 2020, "2020-03-01T10:00:00Z"
// is that second (or the given fraction of it).
func (d DateTime) Range() (low, high time.Time) {
	low = d.Time
	switch d.Precision {
	case Year:
		high = low.AddDate(1, 0, 0)
	case Month:
		high = low.AddDate(0, 1, 0)
	case Day:
		high = low.AddDate(0, 0, 1)
	default:
		step := time.Second
		for range d.Fraction {
			step /= 10
		}
		if step == 0 {
			step = time.Nanosecond
		}
		high = low.Add(step)
	}
	return low, high
}
