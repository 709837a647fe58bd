package fhirpath

import (
	"slices"
	"testing"
)

func TestSpecTypes(t *testing.T) {
	tests := []struct {
		name, parent, element string
		want                  []string
		wantOK                bool
	}{
		{"element of a resource", "Patient", "birthDate", []string{"date"}, true},
		{"inherited element", "Patient", "id", []string{"id"}, true},
		{"element of a data type", "HumanName", "period", []string{"Period"}, true},
		{"choice asked by its bare name", "Condition", "onset", []string{"dateTime", "Age", "Period", "Range", "string"}, true},
		{"element of a backbone element", "Observation.referenceRange", "low", []string{"Quantity"}, true},
		{"element defined by a content reference", "Questionnaire.item.item", "linkId", []string{"string"}, true},
		{"content reference itself", "Questionnaire.item", "item", []string{"BackboneElement"}, true},
		{"element of an inline Element", "Timing.repeat", "count", []string{"positiveInt"}, true},
		{"unknown element", "Patient", "colour", nil, false},
		{"unknown type", "Nope", "id", nil, false},
		{"unknown path", "Patient.nope", "id", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := SpecTypes.ElementType(tc.parent, tc.element)
			if ok != tc.wantOK || !slices.Equal(got, tc.want) {
				t.Errorf("ElementType(%q, %q) = %q, %v; want %q, %v", tc.parent, tc.element, got, ok, tc.want, tc.wantOK)
			}
		})
	}
	for typ, want := range map[string]string{"Age": "Quantity", "code": "string", "canonical": "uri", "Patient": "DomainResource", "DomainResource": "Resource"} {
		if got, ok := SpecTypes.BaseType(typ); !ok || got != want {
			t.Errorf("BaseType(%q) = %q, %v; want %q", typ, got, ok, want)
		}
	}
	if got, ok := SpecTypes.BaseType("Resource"); ok {
		t.Errorf("BaseType(Resource) = %q, want none", got)
	}
}

// TestValueTypes checks the types ValueTypes reads from the definitions,
// and that it claims none for expressions it does not follow.
func TestValueTypes(t *testing.T) {
	for _, tc := range []struct {
		expr string
		from []string
		want []string // nil: not followed
	}{
		{"Medication.batch.lotNumber", nil, []string{"string"}},
		{"Patient.telecom.where(system='email') | Person.telecom.where(system='email')", nil, []string{"ContactPoint"}},
		{"Patient.telecom.where(system = 'a)b' and (use = 'home')).value", nil, []string{"string"}},
		{"Patient.identifier.value", nil, []string{"string"}},
		{"Observation.component.code", nil, []string{"CodeableConcept"}},
		{"Observation | Observation.component", nil, []string{"Observation", "Observation.component"}},
		{"code", []string{"Observation", "Observation.component"}, []string{"CodeableConcept"}},
		{"StructureDefinition.snapshot.element.base.path", nil, []string{"string"}},
		{"Observation.value", nil, []string{"CodeableConcept", "Period", "Quantity", "Range", "Ratio", "SampledData", "boolean", "dateTime", "integer", "string", "time"}},
		{"(Observation.value as CodeableConcept)", nil, nil},
		{"Observation.value.as(string)", nil, nil},
		{"Device.extension('http://x')", nil, nil},
		{"Nope.telecom", nil, nil},
		{"Patient.nope", nil, nil},
		{"telecom", nil, nil}, // a member with no type to start from
		{"%resource.id", nil, nil},
		{"Patient.name.given.first()", nil, nil},
		{"Patient.active = true", nil, nil},
	} {
		got, ok := MustCompile(tc.expr).ValueTypes(tc.from, SpecTypes)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("ValueTypes(%q, %q) = %q, %v, want %q", tc.expr, tc.from, got, ok, tc.want)
		}
	}
	if _, ok := MustCompile("Patient.name").ValueTypes(nil, nil); ok {
		t.Error("ValueTypes claimed types without definitions")
	}
}
