package audit

import (
	"bytes"
	"strings"

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
	const key = `"reference"`
	rest := body
	for {
		i := bytes.Index(rest, []byte(key))
		if i < 0 {
			return
		}
		rest = rest[i+len(key):]
		v, ok := stringValue(rest)
		if !ok {
			continue
		}
		if p, ok := patientID(v, base); ok {
			add(p)
		}
	}
}

// stringValue reads `: "value"` (with optional whitespace) at the start of
// b: the value of a "reference" key. It reports false for anything else
// (a "reference" string that is itself a value, an escaped string).
func stringValue(b []byte) (string, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return "", false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	b = b[1:]
	end := bytes.IndexAny(b, `"\`)
	if end < 0 || b[end] != '"' {
		return "", false
	}
	return string(b[:end]), true
}

// patientID is the id of a reference to a Patient on this server:
// "Patient/{id}", "Patient/{id}/_history/{vid}" or the same after
// base + "/".
func patientID(ref, base string) (string, bool) {
	if base != "" {
		if rel, ok := strings.CutPrefix(ref, base+"/"); ok {
			ref = rel
		}
	}
	id, ok := strings.CutPrefix(ref, "Patient/")
	if !ok {
		return "", false
	}
	id, _, _ = strings.Cut(id, "/")
	if !fhir.ValidID(id) {
		return "", false
	}
	return id, true
}
