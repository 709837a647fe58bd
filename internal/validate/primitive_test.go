package validate

import (
	"regexp"
	"strings"
	"testing"

	"smartfhir/internal/fhir/spec"
)

func TestCheckPrimitive(t *testing.T) {
	tests := []struct {
		typ  string
		json string // the JSON value
		ok   bool
		// regexDiffers marks a case where the spec's regex (which only
		// describes the lexical space) disagrees on purpose: impossible
		// calendar dates, padding inside base64, whitespace-only strings.
		regexDiffers bool
	}{
		{"boolean", `true`, true, false},
		{"boolean", `false`, true, false},
		{"boolean", `"true"`, false, false},
		{"boolean", `1`, false, false},
		{"integer", `0`, true, false},
		{"integer", `-12`, true, false},
		{"integer", `2147483647`, true, false},
		{"integer", `2147483648`, false, true},
		{"integer", `1.0`, false, false},
		{"integer", `1e3`, false, false},
		{"integer", `"1"`, false, false},
		{"positiveInt", `1`, true, false},
		{"positiveInt", `0`, false, false},
		{"unsignedInt", `0`, true, false},
		{"unsignedInt", `-1`, false, false},
		{"decimal", `0.1`, true, false},
		{"decimal", `-1.50e-3`, true, false},
		{"decimal", `185`, true, false},
		{"decimal", `"185"`, false, false},
		{"string", `"hello world"`, true, false},
		{"string", `""`, false, false},
		{"string", `"  "`, false, true},
		{"string", `3`, false, false},
		{"markdown", `"# title\n\ntext"`, true, false},
		{"code", `"final"`, true, false},
		{"code", `"two words"`, true, false},
		{"code", `" lead"`, false, false},
		{"code", `"trail "`, false, false},
		{"code", `"a  b"`, false, false},
		{"id", `"example-1.2"`, true, false},
		{"id", `"a_b"`, false, false},
		{"id", `"0123456789012345678901234567890123456789012345678901234567890123"`, true, false},
		{"id", `"01234567890123456789012345678901234567890123456789012345678901234"`, false, false},
		{"uri", `"http://example.org/x"`, true, false},
		{"uri", `"urn:uuid:1"`, true, false},
		{"uri", `"a b"`, false, false},
		{"url", `"http://example.org/x?y=1"`, true, false},
		{"canonical", `"http://hl7.org/fhir/ValueSet/x|4.0.1"`, true, false},
		{"oid", `"urn:oid:1.2.840.10065"`, true, false},
		{"oid", `"urn:oid:3.1"`, false, false},
		{"oid", `"urn:oid:1.02"`, false, false},
		{"oid", `"1.2.3"`, false, false},
		{"uuid", `"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"`, true, false},
		{"uuid", `"urn:uuid:C757873D-EC9A-4326-A141-556F43239520"`, false, false},
		{"uuid", `"c757873d-ec9a-4326-a141-556f43239520"`, false, false},
		{"date", `"2018"`, true, false},
		{"date", `"2018-02"`, true, false},
		{"date", `"2018-02-28"`, true, false},
		{"date", `"2016-02-29"`, true, false},
		{"date", `"2018-02-29"`, false, true},
		{"date", `"2018-13"`, false, false},
		{"date", `"0000"`, false, false},
		{"date", `"2018-1-1"`, false, false},
		{"date", `"2018-01-01T10:00:00Z"`, false, false},
		{"dateTime", `"2018-01-01"`, true, false},
		{"dateTime", `"2018-01-01T10:00:00Z"`, true, false},
		{"dateTime", `"2018-01-01T10:00:00.123+14:00"`, true, false},
		{"dateTime", `"2018-01-01T23:59:60-05:00"`, true, false},
		{"dateTime", `"2018-01-01T10:00:00"`, false, false},
		{"dateTime", `"2018-01-01T10:00Z"`, false, false},
		{"dateTime", `"2018-01-01T24:00:00Z"`, false, false},
		{"dateTime", `"2018-01-01T10:00:00+14:30"`, false, false},
		{"dateTime", `"2018-01T10:00:00Z"`, false, false},
		{"dateTime", `"2018-04-31"`, false, true},
		{"instant", `"2015-02-07T13:28:17.239+02:00"`, true, false},
		{"instant", `"2015-02-07"`, false, false},
		{"instant", `"2015-02-07T13:28:17"`, false, false},
		{"time", `"13:28:17"`, true, false},
		{"time", `"13:28:17.5"`, true, false},
		{"time", `"13:28"`, false, false},
		{"time", `"25:00:00"`, false, false},
		{"base64Binary", `"dGhpcyBibG9iIGlzIHNuaXBwZWQ="`, true, false},
		{"base64Binary", `"dGhp cyBi\nbG9i"`, true, false},
		{"base64Binary", `"dGhpcw"`, false, false},
		{"base64Binary", `"dG=pcw=="`, false, true},
		{"base64Binary", `"dGh*"`, false, false},
		{"xhtml", `"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"`, true, false},
		{"xhtml", `"<p>x</p>"`, false, false},
	}
	regexes := map[string]*regexp.Regexp{}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.json, func(t *testing.T) {
			n, err := parse([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			reason := checkPrimitive(tc.typ, &n)
			if got := reason == ""; got != tc.ok {
				t.Errorf("checkPrimitive(%s, %s) ok = %v (%s), want %v", tc.typ, tc.json, got, reason, tc.ok)
			}
			// Cross-check with the regex of the core package wherever the
			// JSON type is right and the regex is meant to decide.
			ty := spec.Lookup(tc.typ)
			if ty == nil || ty.Regex == "" || tc.regexDiffers || !jsonTypeOK(tc.typ, n.kind) {
				return
			}
			re := regexes[tc.typ]
			if re == nil {
				re = regexp.MustCompile(`^(?:` + ty.Regex + `)$`)
				regexes[tc.typ] = re
			}
			if got := re.MatchString(n.str); got != tc.ok {
				t.Errorf("spec regex %q matches %s = %v, want %v", ty.Regex, tc.json, got, tc.ok)
			}
		})
	}
}

func jsonTypeOK(typ string, k kind) bool {
	switch typ {
	case "boolean":
		return false // not a string: nothing for the regex to decide
	case "integer", "positiveInt", "unsignedInt", "decimal":
		return k == kNumber
	}
	return k == kString
}

func TestParseRejectsMalformedJSON(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty input", ``},
		{"truncated object", `{"resourceType":"Patient"`},
		{"trailing comma", `{"resourceType":"Patient",}`},
		{"single quotes", `{'resourceType':'Patient'}`},
		{"two values", `{"resourceType":"Patient"} {}`},
		{"bad escape", `{"resourceType":"Pat\ient"}`},
		{"raw control character", "{\"resourceType\":\"Pat\x01ient\"}"},
		{"invalid UTF-8", "{\"resourceType\":\"Pat\xffient\"}"},
		{"leading zero", `{"resourceType":"Patient","x":01}`},
		{"bare word", `{"resourceType":"Patient","active":yes}`},
		{"too deep", `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parse([]byte(tc.in)); err == nil {
				t.Errorf("parse(%q) = nil error", tc.in)
			}
			if err := Resource([]byte(tc.in)); err == nil {
				t.Errorf("Resource(%q) = nil", tc.in)
			}
		})
	}
}

func TestResourceShapes(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantExpr string // "" with wantCode "" means valid
		wantCode string
	}{
		{"minimal resource", `{"resourceType":"Patient"}`, "", ""},
		{"escaped strings", `{"resourceType":"Patient","name":[{"family":"O\u0027Brien \ud83d\ude00"}]}`, "", ""},
		{"primitive extension without value", `{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://x","valueCode":"unknown"}]}}`, "", ""},
		{"paired arrays with nulls", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"g2"}]}]}`, "", ""},
		{"extension array only", `{"resourceType":"Patient","name":[{"_given":[{"id":"g1"}]}]}`, "", ""},
		{"top level array", `[{"resourceType":"Patient"}]`, "", "structure"},
		{"no resourceType", `{"id":"x"}`, "", "structure"},
		{"unknown resourceType", `{"resourceType":"Patent"}`, "resourceType", "invalid"},
		{"resourceType not a string", `{"resourceType":1}`, "resourceType", "structure"},
		{"duplicate property", `{"resourceType":"Patient","active":true,"active":false}`, "Patient.active", "structure"},
		{"_ on a complex element", `{"resourceType":"Patient","_name":[{"id":"x"}]}`, "Patient.name", "structure"},
		{"null value", `{"resourceType":"Patient","active":null}`, "Patient.active", "value"},
		{"null in a complex array", `{"resourceType":"Patient","name":[null]}`, "Patient.name[0]", "structure"},
		{"extension object not an object", `{"resourceType":"Patient","_active":true}`, "Patient.active", "structure"},
		{"resource in a non-resource element", `{"resourceType":"Patient","managingOrganization":{"resourceType":"Organization"}}`, "Patient.managingOrganization.resourceType", "structure"},
		{"choice value and its extension", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueString":{"id":"v"}}`, "", ""},
		{"same choice twice through _", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueBoolean":{"id":"v"}}`, "Observation.valueBoolean", "structure"},
		{"text-only CodeableConcept on a required binding", `{"resourceType":"Condition","subject":{"reference":"Patient/1"},"clinicalStatus":{"text":"active"}}`, "Condition.clinicalStatus", "code-invalid"},
		{"Coding matched without system", `{"resourceType":"Condition","subject":{"reference":"Patient/1"},"clinicalStatus":{"coding":[{"code":"active"}]}}`, "", ""},
		{"Coding from the wrong system", `{"resourceType":"Condition","subject":{"reference":"Patient/1"},"clinicalStatus":{"coding":[{"system":"http://x","code":"active"}]}}`, "Condition.clinicalStatus", "code-invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Resource([]byte(tc.in))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if tc.wantExpr == "" {
				if err == nil {
					t.Fatal("got nil, want an error")
				}
				return
			}
			assertIssue(t, err, tc.wantExpr, tc.wantCode)
		})
	}
}

func TestIssuesAreCapped(t *testing.T) {
	in := `{"resourceType":"Patient","name":[`
	for i := range 100 {
		if i > 0 {
			in += ","
		}
		in += `{"foo":1}`
	}
	in += `]}`
	if got := len(issuesOf(t, Resource([]byte(in)))); got != MaxIssues {
		t.Errorf("len(issues) = %d, want %d", got, MaxIssues)
	}
}
