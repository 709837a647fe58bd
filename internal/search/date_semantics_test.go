package search

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"smartfhir/internal/fhir"
)

// effectiveRows indexes an Observation whose effective[x] is the JSON
// member effective (`"effectiveDateTime":"2013-01-14"`, a Period, a
// Timing) and returns its rows of the date parameter, so that the tests
// below see the ranges the real index writes.
func effectiveRows(t *testing.T, r *Registry, effective string) []DateRow {
	t.Helper()
	body := `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},` + effective + `}`
	ix, err := r.Index("Observation", []byte(body))
	if err != nil {
		t.Fatalf("Index(%s): %v", effective, err)
	}
	var rows []DateRow
	for _, row := range ix.Dates {
		if row.Param == "date" {
			rows = append(rows, row)
		}
	}
	return rows
}

// matchRows is matchDate over every row of a value, as the Exists a
// search compiles to is: one matching row is enough.
func matchRows(t *testing.T, r *Registry, search string, rows []DateRow) bool {
	t.Helper()
	for _, row := range rows {
		if matchDate(t, r, search, row.Low, row.High) {
			return true
		}
	}
	return false
}

type dateCase struct {
	search    string // the date search value, prefix included
	effective string // the Observation's effective[x] member
	want      bool
}

func runDateCases(t *testing.T, cases []dateCase) {
	t.Helper()
	r := testRegistry(t)
	for _, tc := range cases {
		rows := effectiveRows(t, r, tc.effective)
		if len(rows) == 0 {
			t.Errorf("%s gave no date row", tc.effective)
			continue
		}
		if got := matchRows(t, r, tc.search, rows); got != tc.want {
			t.Errorf("date=%s on %s = %v, want %v", tc.search, tc.effective, got, tc.want)
		}
	}
}

func dateTime(s string) string { return `"effectiveDateTime":"` + s + `"` }

// period is a Period from start to end; an empty string leaves that end
// out, which makes the period open on that side.
func period(start, end string) string {
	s := `"effectivePeriod":{`
	if start != "" {
		s += `"start":"` + start + `"`
	}
	if start != "" && end != "" {
		s += ","
	}
	if end != "" {
		s += `"end":"` + end + `"`
	}
	return s + "}"
}

// TestDateSpecExamples runs the prefix table of R4 search.html#date with
// its own values, minute precision (lt2013-01-14T10:00) included. The
// table's dateTimes without seconds or zone are written as the dateTime
// datatype requires them in a resource; its periods "from 21-Jan 2013
// onwards" and "before and including 21-Jan 2013" are Periods open at one
// end.
func TestDateSpecExamples(t *testing.T) {
	from21Jan := period("2013-01-21", "")
	from15Mar := period("2013-03-15", "")
	until21Jan := period("", "2013-01-21")
	runDateCases(t, []dateCase{
		{"eq2013-01-14", dateTime("2013-01-14T00:00:00Z"), true},
		{"eq2013-01-14", dateTime("2013-01-14T10:00:00Z"), true},
		{"eq2013-01-14", dateTime("2013-01-15T00:00:00Z"), false},
		{"ne2013-01-14", dateTime("2013-01-15T00:00:00Z"), true},
		{"ne2013-01-14", dateTime("2013-01-14T00:00:00Z"), false},
		{"ne2013-01-14", dateTime("2013-01-14T10:00:00Z"), false},
		// "2013-01-14 matches, because it includes the part of 14-Jan 2013
		// before 10am" (after 10am for gt).
		{"lt2013-01-14T10:00", dateTime("2013-01-14"), true},
		{"gt2013-01-14T10:00", dateTime("2013-01-14"), true},
		{"ge2013-03-14", from21Jan, true},
		{"le2013-03-14", from21Jan, true},
		{"sa2013-03-14", from15Mar, true},
		{"sa2013-03-14", from21Jan, false},
		{"sa2013-03-14", until21Jan, false},
		{"eb2013-03-14", from15Mar, false},
		{"eb2013-03-14", from21Jan, false},
		{"eb2013-03-14", until21Jan, true},
		// ap: "14-Mar 2013 is included - as it exactly matches", "15-Jun
		// 2015 is not included - as it is not near 14-Mar 2013". The row's
		// third example ("21-Jan 2013 is not included because that is near
		// 14-Mar 2013") contradicts itself, and how near is near is left to
		// the server, so it is not asserted.
		{"ap2013-03-14", dateTime("2013-03-14"), true},
		{"ap2013-03-14", dateTime("2015-06-15"), false},
	})
}

// TestDateSearchValueForms checks the forms a date search value may take
// beyond the dateTime datatype: minute precision, no time zone (taken as
// UTC, the server's zone) and fractional seconds.
func TestDateSearchValueForms(t *testing.T) {
	runDateCases(t, []dateCase{
		// A minute is the whole of that minute, with or without a zone.
		{"eq2013-01-14T10:00", dateTime("2013-01-14T10:00:30Z"), true},
		{"eq2013-01-14T10:00", dateTime("2013-01-14T10:01:00Z"), false},
		{"eq2013-01-14T10:00", dateTime("2013-01-14T09:59:59Z"), false},
		{"eq2013-01-14T10:00Z", dateTime("2013-01-14T10:00:59.999Z"), true},
		{"gt2013-01-14T10:00", dateTime("2013-01-14T10:00:30Z"), false},
		{"gt2013-01-14T10:00", dateTime("2013-01-14T10:01:00Z"), true},
		{"lt2013-01-14T10:00", dateTime("2013-01-14T09:59:59Z"), true},
		{"lt2013-01-14T10:00", dateTime("2013-01-14T10:00:00Z"), false},
		{"sa2013-01-14T10:00", dateTime("2013-01-14T10:00:59Z"), false},
		{"sa2013-01-14T10:00", dateTime("2013-01-14T10:01:00Z"), true},
		// An offset moves the minute: 10:00+01:00 is 09:00Z.
		{"eq2013-01-14T10:00+01:00", dateTime("2013-01-14T09:00:30Z"), true},
		{"eq2013-01-14T10:00-05:00", dateTime("2013-01-14T10:00:30Z"), false},
		// No zone is UTC, whatever the zone of the stored value.
		{"eq2013-01-14T10:00", dateTime("2013-01-14T11:00:30+01:00"), true},
		{"eq2013-01-14T10:00:00", dateTime("2013-01-14T10:00:00Z"), true},
		{"eq2013-01-14T10:00:00", dateTime("2013-01-14T10:00:00-01:00"), false},
		{"eq2013-01-14T10:00:00", dateTime("2013-01-14T10:00:00.500Z"), true},
		{"eq2013-01-14T10:00:00", dateTime("2013-01-14T10:00:01Z"), false},
		// A fraction narrows the second to its last digit.
		{"eq2013-01-14T10:00:00.5Z", dateTime("2013-01-14T10:00:00.500Z"), true},
		{"eq2013-01-14T10:00:00.5Z", dateTime("2013-01-14T10:00:00.600Z"), false},
		{"eq2013-01-14T10:00:00.5Z", dateTime("2013-01-14T10:00:00Z"), false},
		{"eq2013-01-14T10:00:00.25", dateTime("2013-01-14T10:00:00.25Z"), true},
		{"eq2013-01-14T10:00:00.25", dateTime("2013-01-14T10:00:00.26Z"), false},
		{"ge2013-01-14T10:00:00.123-05:00", dateTime("2013-01-14T15:00:00.123Z"), true},
		{"ge2013-01-14T10:00:00.123-05:00", dateTime("2013-01-14T15:00:00.122Z"), false},
		// More than nine digits are read to the nanosecond, as stored
		// values are.
		{"eq2013-01-14T10:00:00.1234567891", dateTime("2013-01-14T10:00:00.123456789Z"), true},
		// Seconds without a zone are a full dateTime's second.
		{"lt2013-01-14T10:00:01", dateTime("2013-01-14T10:00:00Z"), true},
		{"lt2013-01-14T10:00:01", dateTime("2013-01-14T10:00:01Z"), false},
	})
}

// TestDateSearchValueInvalid: what is not a date is an Invalid error
// (a 400 OperationOutcome) on a date parameter and on _lastUpdated, and a
// date without a time keeps refusing a zone, as the dateTime datatype does.
func TestDateSearchValueInvalid(t *testing.T) {
	r := testRegistry(t)
	for _, v := range []string{
		"2013-13-01",                   // no 13th month
		"2013-02-30",                   // no 30 February
		"2013-01-14T25:00",             // no 25th hour
		"2013-01-14T24:00",             // 24:00 is not a time in FHIR
		"2013-01-14T10",                // an hour alone is not a precision
		"2013-01-14T10:60",             // no 60th minute
		"2013-01-14T10:00:60Z",         // leap seconds are not supported
		"2013-01-14T",                  // a T with no time
		"2013-01-14TZ",                 // a zone with no time
		"2013-01-14Z",                  // a date has no zone
		"2013-01T10:00",                // a time needs a whole date
		"2013-01-14T10:00+01",          // an offset needs its minutes
		"2013-01-14T10:00+15:00",       // beyond the offsets R4 allows
		"2013-01-14T10:00:00.Z",        // a point without digits
		"2013-01-14T10:00:00.5+01:00Z", // two zones
		"2013-01-14 10:00",             // a space for the T
		"lt2013-01-14T25:00",
		"yesterday",
		"",
	} {
		for _, param := range []string{"date", "_lastUpdated"} {
			_, _, err := r.Parse("Observation", url.Values{param: {v}}, false)
			var fe *fhir.Error
			if !errors.As(err, &fe) || fe.Code != fhir.Invalid {
				t.Errorf("%s=%s: error %v, want an Invalid fhir.Error", param, v, err)
			}
		}
	}
}

// TestLastUpdatedSearchValueForms: _lastUpdated compares an instant with
// the search range, so the looser forms must reach it as they reach date
// parameters.
func TestLastUpdatedSearchValueForms(t *testing.T) {
	r := testRegistry(t)
	ix, err := r.Index("Observation", []byte(`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	for _, tc := range []struct {
		search, lastUpdated string
		want                bool
	}{
		{"lt2013-01-14T10:00", "2013-01-14T09:59:59.999Z", true},
		{"lt2013-01-14T10:00", "2013-01-14T10:00:00Z", false},
		{"gt2013-01-14T10:00", "2013-01-14T10:00:59.999Z", false},
		{"gt2013-01-14T10:00", "2013-01-14T10:01:00Z", true},
		{"eq2013-01-14T10:00", "2013-01-14T10:00:30.5Z", true},
		{"eq2013-01-14T10:00", "2013-01-14T11:00:30.5+01:00", true},
		{"eq2013-01-14T10:00+01:00", "2013-01-14T10:00:30.5Z", false},
		{"le2013-01-14T10:00", "2013-01-14T10:00:59.999Z", true},
		{"ge2013-01-14T10:00:00.5", "2013-01-14T10:00:00.499Z", false},
		{"ge2013-01-14T10:00:00.5", "2013-01-14T10:00:00.5Z", true},
	} {
		q, _, err := r.Parse("Observation", url.Values{"_lastUpdated": {tc.search}}, true)
		if err != nil {
			t.Errorf("_lastUpdated=%s: %v", tc.search, err)
			continue
		}
		got, err := Match(ix, "o1", at(tc.lastUpdated), q.Where)
		if err != nil || got != tc.want {
			t.Errorf("_lastUpdated=%s on %s = %v, %v; want %v", tc.search, tc.lastUpdated, got, err, tc.want)
		}
	}
}

// TestDateTiming checks R4 search.html#date on Timing: "the specified
// scheduling details are ignored and only the outer limits matter", so
// every second day between 31-Jan-2013 and 24-Mar-2013 includes
// 1-Feb-2013. The range runs from the earliest event or boundsPeriod start
// to the latest event or boundsPeriod end.
func TestDateTiming(t *testing.T) {
	timing := func(events, bounds string) string {
		s := `"effectiveTiming":{`
		if events != "" {
			s += `"event":[` + events + `]`
		}
		if events != "" && bounds != "" {
			s += ","
		}
		if bounds != "" {
			s += `"repeat":{` + bounds + `,"frequency":1,"period":2,"periodUnit":"d"}`
		}
		return s + "}"
	}
	everySecondDay := timing("", `"boundsPeriod":{"start":"2013-01-31","end":"2013-03-24"}`)
	withEvents := timing(`"2013-01-20T08:00:00Z","2013-04-02T08:00:00Z"`, `"boundsPeriod":{"start":"2013-01-31","end":"2013-03-24"}`)
	eventInside := timing(`"2013-02-10T08:00:00Z"`, `"boundsPeriod":{"start":"2013-01-31","end":"2013-03-24"}`)
	openEnd := timing("", `"boundsPeriod":{"start":"2013-01-31"}`)
	openStart := timing("", `"boundsPeriod":{"end":"2013-03-24"}`)
	eventsOnly := timing(`"2013-01-14T10:00:00Z","2013-01-16T10:00:00Z"`, "")
	runDateCases(t, []dateCase{
		// 1-Feb-2013 is inside the schedule's limits: the schedule reaches
		// both before and after that day, and a wider search contains it.
		// Plain date=2013-02-01 is eq, which asks that the whole schedule
		// lie within that day, so it does not match (as a Period from
		// 31-Jan to 24-Mar would not).
		{"ge2013-02-01", everySecondDay, true},
		{"le2013-02-01", everySecondDay, true},
		{"ap2013-02-01", everySecondDay, true},
		{"2013-02-01", everySecondDay, false},
		{"2013", everySecondDay, true},
		{"ge2013-03-01", everySecondDay, true},
		{"lt2013-01-01", everySecondDay, false},
		{"gt2013-04-01", everySecondDay, false},
		{"lt2013-01-31", everySecondDay, false},
		{"gt2013-03-24", everySecondDay, false},
		{"eb2013-03-25", everySecondDay, true},
		{"sa2013-01-30", everySecondDay, true},

		// Events outside the bounds widen the range to them.
		{"lt2013-01-31", withEvents, true},
		{"gt2013-03-24", withEvents, true},
		{"sa2013-01-20", withEvents, false},
		{"sa2013-01-19", withEvents, true},
		{"eb2013-04-02", withEvents, false},
		{"eb2013-04-03", withEvents, true},
		{"eq2013-01", withEvents, false},
		// Events inside the bounds leave the bounds as the limits.
		{"lt2013-02-01", eventInside, true},
		{"gt2013-03-01", eventInside, true},
		{"eq2013-02", eventInside, false},

		// A boundsPeriod open at one end leaves the range open there.
		{"gt2100-01-01", openEnd, true},
		{"lt2013-01-31", openEnd, false},
		{"sa2013-01-30", openEnd, true},
		{"eb2200-01-01", openEnd, false},
		{"lt1900-01-01", openStart, true},
		{"gt2013-03-24", openStart, false},
		{"eb2013-03-25", openStart, true},
		{"sa1900-01-01", openStart, false},

		// Events alone run from the first to the last.
		{"eq2013-01", eventsOnly, true},
		{"eq2013-01-14", eventsOnly, false},
		{"lt2013-01-15", eventsOnly, true},
		{"gt2013-01-15", eventsOnly, true},
	})

	// Without events or a boundsPeriod there is no date: boundsDuration
	// and boundsRange are lengths, not dates.
	r := testRegistry(t)
	for _, effective := range []string{
		timing("", `"boundsDuration":{"value":10,"unit":"d","system":"http://unitsofmeasure.org","code":"d"}`),
		timing("", `"boundsRange":{"low":{"value":5,"unit":"d"},"high":{"value":10,"unit":"d"}}`),
		`"effectiveTiming":{"code":{"text":"BID"}}`,
	} {
		if rows := effectiveRows(t, r, effective); len(rows) != 0 {
			t.Errorf("%s gave date rows %v, want none", effective, rows)
		}
	}
}

// FuzzSearchRange: a search value is read as stored data is wherever the
// two agree on the form (a date, or a dateTime with seconds and a zone),
// a value without a zone is the same as that value in UTC, and every
// accepted value is a range that is not empty.
func FuzzSearchRange(f *testing.F) {
	for _, s := range []string{
		"2013", "2013-01", "2013-01-14", "2013-01-14T10:00", "2013-01-14T10:00Z",
		"2013-01-14T10:00+01:00", "2013-01-14T10:00:00", "2013-01-14T10:00:00.5-05:00",
		"2013-01-14T10", "2013-13-01", "2013-01-14T25:00", "2013-01-14T10:00:00.1234567891Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, ok := searchRange(s)
		if ok && lo >= hi {
			t.Errorf("searchRange(%q) = [%d, %d), an empty range", s, lo, hi)
		}
		if dl, dh, dok := dateRange(s); dok && (!ok || dl != lo || dh != hi) {
			t.Errorf("searchRange(%q) = %d, %d, %v; dateRange = %d, %d", s, lo, hi, ok, dl, dh)
		}
		if zl, zh, zok := searchRange(s + "Z"); zok && (!ok || zl != lo || zh != hi) {
			t.Errorf("searchRange(%q) = %d, %d, %v; with Z = %d, %d", s, lo, hi, ok, zl, zh)
		}
	})
}
