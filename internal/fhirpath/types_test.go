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
