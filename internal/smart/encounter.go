package smart

import (
	"context"
	"strings"
)

// EncounterChoice is one Encounter the consent page offers in a standalone
// launch that asks for launch/encounter.
type EncounterChoice struct {
	// ID is the Encounter's logical id.
	ID string
	// Start and End are Encounter.period.start and .end as written (FHIR
	// dateTime), empty when absent.
	Start, End string
	// Type is the text of Encounter.type (its text, else a coding's
	// display, else its code), empty when absent.
	Type string
	// Class is Encounter.class (its display, else its code).
	Class string
	// Status is Encounter.status.
	Status string
}

// EncounterFinder lists a patient's encounters, most recent first, at most
// limit of them: the choices of the standalone encounter picker (SMART App
// Launch 2.2 §"Capability Sets": context-standalone-encounter). The
// command wires it to the FHIR store; without one, standalone launches
// get no encounter and the capability is not advertised.
type EncounterFinder interface {
	PatientEncounters(ctx context.Context, patientID string, limit int) ([]EncounterChoice, error)
}

// encounterPickerLimit is how many of a patient's latest encounters the
// picker lists: enough for the visit in progress or just ended, which is
// what an app launched for "this encounter" wants.
const encounterPickerLimit = 20

// encounterOption is one radio input of the encounter picker.
type encounterOption struct {
	ID, Date, Type, Class, Status string
	Checked                       bool
}

// encounterOptions labels encounters for the page; the first (the most
// recent) is preselected, like the first patient of the patient picker.
func encounterOptions(encs []EncounterChoice) []encounterOption {
	out := make([]encounterOption, len(encs))
	for i, e := range encs {
		typ := e.Type
		if typ == "" {
			typ = "Visit"
		}
		out[i] = encounterOption{ID: e.ID, Date: visitDates(e.Start, e.End), Type: typ, Class: e.Class, Status: e.Status, Checked: i == 0}
	}
	return out
}

// visitDates renders a period as its calendar dates: "2024-03-01", or
// "2024-03-01 to 2024-03-04" for a stay over several days.
func visitDates(start, end string) string {
	day := func(s string) string {
		d, _, _ := strings.Cut(s, "T")
		return d
	}
	s, e := day(start), day(end)
	switch {
	case s == "" && e == "":
		return "Date unknown"
	case s == "":
		return "Until " + e
	case e == "" || e == s:
		return s
	}
	return s + " to " + e
}

// encounterIndex is the position of id among encs, -1 when it is not one
// of them: a posted encounter must be one that was offered.
func encounterIndex(encs []EncounterChoice, id string) int {
	if id == "" {
		return -1
	}
	for i, e := range encs {
		if e.ID == id {
			return i
		}
	}
	return -1
}
