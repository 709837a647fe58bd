package validate

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"smartfhir/internal/fhir"
)

// obj is a decoded JSON object; the helpers below navigate and edit it.
type obj = map[string]any

// get walks keys (string) and indexes (int) from v.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(obj)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func exampleByName(t *testing.T, name string) obj {
	t.Helper()
	for _, ex := range examples(t) {
		if ex.name == name {
			var m obj
			if err := json.Unmarshal(ex.raw, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("example %s not in the package", name)
	return nil
}

// TestMutatedExamplesAreRejected breaks valid official examples in one
// place each and checks that the validator rejects them with an issue of the
// right type at the right FHIRPath.
func TestMutatedExamplesAreRejected(t *testing.T) {
	tests := []struct {
		name     string
		example  string
		mutate   func(r obj)
		wantExpr string
		wantCode string
	}{
		{"unknown element at the root", "Patient-example.json",
			func(r obj) { r["foo"] = "bar" }, "Patient.foo", "structure"},
		{"unknown element in a data type", "Patient-example.json",
			func(r obj) { get(r, "name", 1).(obj)["nickname"] = "Jim" }, "Patient.name[1].nickname", "structure"},
		{"unknown element in a backbone element", "Patient-example.json",
			func(r obj) { get(r, "contact", 0).(obj)["foo"] = true }, "Patient.contact[0].foo", "structure"},
		{"unknown element in a primitive's extension object", "Patient-example.json",
			func(r obj) { r["_birthDate"].(obj)["foo"] = 1 }, "Patient.birthDate.foo", "structure"},
		{"unknown element in an extension", "Patient-example.json",
			func(r obj) { get(r, "_birthDate", "extension", 0).(obj)["bar"] = 1 }, "Patient.birthDate.extension[0].bar", "structure"},
		{"boolean given as a string", "Patient-example.json",
			func(r obj) { r["active"] = "true" }, "Patient.active", "value"},
		{"string given as a number", "Patient-example.json",
			func(r obj) { get(r, "name", 0).(obj)["family"] = 42 }, "Patient.name[0].family", "value"},
		{"impossible date", "Patient-example.json",
			func(r obj) { r["birthDate"] = "1974-02-30" }, "Patient.birthDate", "value"},
		{"date with a time", "Patient-example.json",
			func(r obj) { r["birthDate"] = "1974-12-25T10:00:00Z" }, "Patient.birthDate", "value"},
		{"single element given as an array", "Patient-example.json",
			func(r obj) { r["gender"] = []any{"male"} }, "Patient.gender", "structure"},
		{"repeating element given as a single value", "Patient-example.json",
			func(r obj) { r["name"] = get(r, "name", 0) }, "Patient.name", "structure"},
		{"empty array", "Patient-example.json",
			func(r obj) { r["telecom"] = []any{} }, "Patient.telecom", "structure"},
		{"empty string", "Patient-example.json",
			func(r obj) { get(r, "name", 0).(obj)["family"] = "" }, "Patient.name[0].family", "value"},
		{"empty object", "Patient-example.json",
			func(r obj) { r["managingOrganization"] = obj{} }, "Patient.managingOrganization", "structure"},
		{"code outside a required binding", "Patient-example.json",
			func(r obj) { r["gender"] = "M" }, "Patient.gender", "code-invalid"},
		{"code outside a required binding in a data type", "Patient-example.json",
			func(r obj) { get(r, "name", 0).(obj)["use"] = "nick" }, "Patient.name[0].use", "code-invalid"},
		{"primitive array and extension array of different lengths", "Patient-example.json",
			func(r obj) { get(r, "name", 0).(obj)["_given"] = []any{nil} }, "Patient.name[0].given", "structure"},
		{"null in a primitive array with no extension", "Patient-example.json",
			func(r obj) { get(r, "name", 0).(obj)["given"] = []any{"Peter", nil} }, "Patient.name[0].given[1]", "structure"},
		{"two variants of a choice", "Patient-example.json",
			func(r obj) { r["deceasedDateTime"] = "2015-01-01" }, "Patient.deceasedDateTime", "structure"},
		{"unknown choice variant", "Observation-example.json",
			func(r obj) { r["valueFoo"] = 1 }, "Observation.valueFoo", "structure"},
		{"decimal given as a string", "Observation-example.json",
			func(r obj) { r["valueQuantity"].(obj)["value"] = "185" }, "Observation.valueQuantity.value", "value"},
		{"missing required element", "Observation-example.json",
			func(r obj) { delete(r, "status") }, "Observation.status", "required"},
		{"missing required element in a data type", "Observation-example.json",
			func(r obj) {
				r["extension"] = []any{obj{"valueString": "x"}}
			}, "Observation.extension[0].url", "required"},
		{"bad dateTime zone", "Observation-example.json",
			func(r obj) { r["effectiveDateTime"] = "2016-03-28T10:00:00" }, "Observation.effectiveDateTime", "value"},
		{"bad code in a required CodeableConcept", "Condition-example.json",
			func(r obj) { get(r, "clinicalStatus", "coding", 0).(obj)["code"] = "bogus" }, "Condition.clinicalStatus", "code-invalid"},
		{"bad uri", "Condition-example.json",
			func(r obj) { get(r, "clinicalStatus", "coding", 0).(obj)["system"] = "http://a b" }, "Condition.clinicalStatus.coding[0].system", "value"},
		{"too many values", "Encounter-example.json",
			func(r obj) {
				// Encounter.class is 1..1: a second value is one too many.
				r["class"] = []any{r["class"], r["class"]}
			}, "Encounter.class", "structure"},
		{"contained resource with an unknown element", "MedicationRequest-medrx0301.json",
			func(r obj) { get(r, "contained", 0).(obj)["foo"] = 1 }, "MedicationRequest.contained[0].foo", "structure"},
		{"contained resource without id", "MedicationRequest-medrx0301.json",
			func(r obj) { delete(get(r, "contained", 0).(obj), "id") }, "MedicationRequest.contained[0]", "required"},
		{"nested contained resource", "MedicationRequest-medrx0301.json",
			func(r obj) {
				get(r, "contained", 0).(obj)["contained"] = []any{obj{"resourceType": "Basic", "id": "b", "code": obj{"text": "x"}}}
			},
			"MedicationRequest.contained[0].contained", "structure"},
		{"contained resource of unknown type", "MedicationRequest-medrx0301.json",
			func(r obj) { get(r, "contained", 0).(obj)["resourceType"] = "Medicine" }, "MedicationRequest.contained[0].resourceType", "invalid"},
		{"bad code in a data type's required binding", "MedicationRequest-medrx0301.json",
			func(r obj) { get(r, "dispenseRequest", "expectedSupplyDuration").(obj)["comparator"] = "~" },
			"MedicationRequest.dispenseRequest.expectedSupplyDuration.comparator", "code-invalid"},
		{"unknown element in a Bundle entry resource", "Bundle-bundle-example.json",
			func(r obj) { get(r, "entry", 1, "resource").(obj)["foo"] = 1 }, "Bundle.entry[1].resource.foo", "structure"},
		{"wrong type in a Bundle entry resource", "Bundle-bundle-example.json",
			func(r obj) { get(r, "entry", 0, "resource").(obj)["status"] = 1 }, "Bundle.entry[0].resource.status", "value"},
		{"abstract resource type in a Bundle entry", "Bundle-bundle-example.json",
			func(r obj) { get(r, "entry", 0, "resource").(obj)["resourceType"] = "DomainResource" }, "Bundle.entry[0].resource.resourceType", "invalid"},
		{"unknown element in a nested questionnaire item", "Questionnaire-3141.json",
			func(r obj) { get(r, "item", 0, "item", 0).(obj)["foo"] = 1 }, "Questionnaire.item[0].item[0].foo", "structure"},
		{"unsigned integer given as a negative number", "MedicationRequest-medrx0301.json",
			func(r obj) { r["dispenseRequest"].(obj)["numberOfRepeatsAllowed"] = -1 }, "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", "value"},
		{"integer given as a decimal", "MedicationRequest-medrx0301.json",
			func(r obj) { r["dispenseRequest"].(obj)["numberOfRepeatsAllowed"] = 1.5 }, "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", "value"},
		{"bad id", "Patient-example.json",
			func(r obj) { r["id"] = "a_b" }, "Patient.id", "value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := exampleByName(t, tc.example)
			if err := Resource(mustJSON(t, r)); err != nil {
				t.Fatalf("unmutated %s: %v", tc.example, err)
			}
			tc.mutate(r)
			err := Resource(mustJSON(t, r))
			if tc.wantExpr == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			assertIssue(t, err, tc.wantExpr, tc.wantCode)
		})
	}
}

func TestParametersResource(t *testing.T) {
	raw := `{"resourceType":"Parameters","parameter":[{"name":"a","valueString":"x"},
		{"name":"b","resource":{"resourceType":"Patient","id":"p","foo":1}}]}`
	assertIssue(t, Resource([]byte(raw)), "Parameters.parameter[1].resource.foo", "structure")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertIssue checks that err is an invalid *fhir.Error with an issue of the
// given code at the given expression.
func assertIssue(t *testing.T, err error, wantExpr, wantCode string) {
	t.Helper()
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *fhir.Error", err)
	}
	if fe.Code != fhir.Invalid {
		t.Errorf("code = %s, want %s", fe.Code, fhir.Invalid)
	}
	for _, is := range fe.Issues {
		if slices.Contains(is.Expression, wantExpr) && is.Code == wantCode {
			if is.Severity != "error" || is.Diagnostics == "" {
				t.Errorf("issue %+v: want severity error and diagnostics", is)
			}
			return
		}
	}
	t.Errorf("issues = %+v, want one of type %s at %s", fe.Issues, wantCode, wantExpr)
}

func issuesOf(t *testing.T, err error) []fhir.Issue {
	t.Helper()
	var fe *fhir.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *fhir.Error", err)
	}
	return fe.Issues
}
