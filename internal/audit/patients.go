package audit

import (
	"bytes"

	"smartfhir/internal/fhir"
)

// Patients calls add with the ids of the patients a resource is about: a
// Patient's own id, and the target of every reference to a Patient in the
// body ("Patient/{id}", or an absolute URL on base, which has no trailing
// slash). That is a superset of the resource's Patient compartments — a
// resource that merely mentions a patient counts as touching their data,
// which is what an audit should err on — found by a scan of the JSON text
// rather than by parsing it, so that auditing a search page costs
// microseconds.
func Patients(typ, id string, body []byte, base string, add func(patientID string)) {
	if typ == "Patient" && id != "" {
		add(id)
	}
	// Look for the rarer "Patient/" and check backwards that it begins
	// the value of a "reference" key (after base + "/", if absolute).
	const needle = "Patient/"
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(needle))
		if j < 0 {
			return
		}
		at := i + j
		i = at + len(needle)
		if !referenceValueAt(body, at, base) {
			continue
		}
		end := bytes.IndexAny(body[i:], `"/\`)
		if end < 0 {
			return
		}
		if p := string(body[i : i+end]); body[i+end] != '\\' && fhir.ValidID(p) {
			add(p)
		}
	}
}

// referenceValueAt reports whether the string value of a "reference" key
// starts at body[at], or base + "/" does and body[at] follows it.
func referenceValueAt(body []byte, at int, base string) bool {
	q := at - 1
	if q >= 0 && body[q] != '"' {
		// An absolute reference: the base and a slash before.
		if base == "" || at < len(base)+2 || string(body[at-len(base)-1:at]) != base+"/" {
			return false
		}
		q = at - len(base) - 2
	}
	if q < 0 || body[q] != '"' {
		return false
	}
	k := skipBack(body, q-1)
	if k < 0 || body[k] != ':' {
		return false
	}
	k = skipBack(body, k-1)
	const key = `"reference"`
	return k+1 >= len(key) && string(body[k+1-len(key):k+1]) == key
}

// skipBack returns the index of the last byte at or before k that is not
// JSON white space, or -1.
func skipBack(b []byte, k int) int {
	for k >= 0 && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
		k--
	}
	return k
}
