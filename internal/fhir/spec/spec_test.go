package spec

import (
	"slices"
	"testing"
)

func TestResourceTypes(t *testing.T) {
	types := ResourceTypes()
	// The core package of R4 4.0.1 defines 146 concrete resource types.
	if got, want := len(types), 146; got != want {
		t.Errorf("len(ResourceTypes()) = %d, want %d", got, want)
	}
	if !slices.IsSorted(types) {
		t.Error("ResourceTypes() is not sorted")
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"Patient", true}, {"Observation", true}, {"Bundle", true}, {"Parameters", true},
		{"Resource", false}, {"DomainResource", false}, {"HumanName", false}, {"string", false}, {"Foo", false}, {"", false},
	} {
		if got := IsResourceType(tc.name); got != tc.want {
			t.Errorf("IsResourceType(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	t.Run("resource elements carry cardinality and types", func(t *testing.T) {
		p := Lookup("Patient")
		if p == nil || p.Kind != Resource || p.Base != "DomainResource" {
			t.Fatalf("Lookup(Patient) = %+v", p)
		}
		name := p.Children.Child("name")
		if name == nil || name.Min != 0 || name.Max != -1 || !slices.Equal(name.Types, []string{"HumanName"}) {
			t.Errorf("Patient.name = %+v", name)
		}
		id, ok := p.Children.Field("id")
		if !ok || id.Type != "id" {
			t.Errorf("Patient.id type = %q, want id", id.Type)
		}
		contact := p.Children.Child("contact")
		if contact == nil || contact.Children == nil || contact.Children.Child("relationship") == nil {
			t.Errorf("Patient.contact has no inline children: %+v", contact)
		}
	})
	t.Run("choice elements resolve by JSON name", func(t *testing.T) {
		o := Lookup("Observation")
		f, ok := o.Children.Field("valueQuantity")
		if !ok || f.Type != "Quantity" || f.Element.Name != "value[x]" || !f.Element.Choice {
			t.Errorf("Field(valueQuantity) = %+v, %v", f, ok)
		}
		if _, ok := o.Children.Field("valueFoo"); ok {
			t.Error("Field(valueFoo) found")
		}
		if _, ok := o.Children.Field("value[x]"); ok {
			t.Error("Field(value[x]) found")
		}
		if got := o.Children.Child("status"); got == nil || got.Min != 1 {
			t.Errorf("Observation.status = %+v, want min 1", got)
		}
		if !slices.ContainsFunc(o.Children.Required(), func(e *Element) bool { return e.Name == "code" }) {
			t.Error("Observation.code not among required children")
		}
	})
	t.Run("content references share the target's children", func(t *testing.T) {
		q := Lookup("Questionnaire")
		item := q.Children.Child("item")
		sub := item.Children.Child("item")
		if sub == nil || sub.ContentRef != "Questionnaire.item" || sub.Children != item.Children {
			t.Errorf("Questionnaire.item.item = %+v", sub)
		}
	})
	t.Run("required bindings are expanded", func(t *testing.T) {
		g := Lookup("Patient").Children.Child("gender")
		if g.Binding == nil {
			t.Fatal("Patient.gender has no binding")
		}
		for _, c := range []string{"male", "female", "other", "unknown"} {
			if !g.Binding.HasCode(c) || !g.Binding.HasCoding("http://hl7.org/fhir/administrative-gender", c) {
				t.Errorf("gender binding lacks %q", c)
			}
		}
		if g.Binding.HasCode("M") {
			t.Error("gender binding has M")
		}
		// Nested concept hierarchies count: v3 ActCode-based sets are
		// large; encounter status is flat. Use a nested one.
		st := Lookup("Observation").Children.Child("status")
		if st.Binding == nil || !st.Binding.HasCode("final") || !st.Binding.HasCode("corrected") {
			t.Errorf("Observation.status binding = %+v (corrected is nested under amended)", st.Binding)
		}
	})
	t.Run("primitives carry their regex", func(t *testing.T) {
		for name, want := range map[string]string{"boolean": "true|false", "id": `[A-Za-z0-9\-\.]{1,64}`} {
			ty := Lookup(name)
			if ty == nil || ty.Kind != Primitive || ty.Regex != want {
				t.Errorf("Lookup(%s) = %+v, want regex %q", name, ty, want)
			}
		}
	})
	t.Run("data types", func(t *testing.T) {
		q := Lookup("Quantity")
		if q == nil || q.Kind != Complex || q.Children.Child("comparator").Binding == nil {
			t.Errorf("Quantity = %+v", q)
		}
		if Lookup("SimpleQuantity") != nil {
			t.Error("profile SimpleQuantity is listed as a type")
		}
	})
}

func TestSearchParams(t *testing.T) {
	all := SearchParams()
	if got, want := len(all), 1400; got != want {
		t.Errorf("len(SearchParams()) = %d, want %d", got, want)
	}
	var name *SearchParam
	for i, sp := range all {
		if sp.URL == "http://hl7.org/fhir/SearchParameter/individual-given" {
			name = &all[i]
		}
	}
	if name == nil || name.Type != "string" || !slices.Contains(name.Base, "Patient") {
		t.Errorf("individual-given = %+v", name)
	}
	byCode := map[string]SearchParam{}
	for _, sp := range SearchParamsFor("Observation") {
		byCode[sp.Code] = sp
	}
	for _, code := range []string{"_id", "_lastUpdated", "_text", "code", "subject", "patient", "code-value-quantity"} {
		if _, ok := byCode[code]; !ok {
			t.Errorf("SearchParamsFor(Observation) lacks %s", code)
		}
	}
	if sp := byCode["code-value-quantity"]; sp.Type != "composite" || len(sp.Components) != 2 {
		t.Errorf("code-value-quantity = %+v", sp)
	}
	if sp := byCode["subject"]; sp.Type != "reference" || !slices.Contains(sp.Target, "Patient") {
		t.Errorf("subject = %+v", sp)
	}
	if _, ok := byCode["_text"]; ok && SearchParamsFor("Binary") != nil {
		for _, sp := range SearchParamsFor("Binary") {
			if sp.Code == "_text" {
				t.Error("Binary (not a DomainResource) has _text")
			}
		}
	}
	if SearchParamsFor("Nope") != nil {
		t.Error("SearchParamsFor(Nope) != nil")
	}
}

func TestCompartment(t *testing.T) {
	p := Compartment("Patient")
	if got := p["Observation"]; !slices.Contains(got, "subject") || !slices.Contains(got, "performer") {
		t.Errorf("Patient compartment Observation params = %v", got)
	}
	if _, ok := p["ActivityDefinition"]; ok {
		t.Error("ActivityDefinition is in the Patient compartment")
	}
	for _, c := range []string{"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"} {
		if len(Compartment(c)) == 0 {
			t.Errorf("Compartment(%s) is empty", c)
		}
	}
	if Compartment("Nope") != nil {
		t.Error("Compartment(Nope) != nil")
	}
}

func TestUSCore(t *testing.T) {
	params := USCoreSearchParams()
	var race, patientName bool
	for _, sp := range params {
		if sp.Code == "race" && slices.Contains(sp.Base, "Patient") && sp.Type == "token" {
			race = true
		}
		if sp.Code == "name" && slices.Contains(sp.Base, "Patient") {
			patientName = true
		}
	}
	if !race || !patientName {
		t.Errorf("US Core search parameters lack Patient race (%v) or name (%v)", race, patientName)
	}
	profiles := USCoreProfiles()
	want := Profile{URL: "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", Type: "Patient"}
	if !slices.Contains(profiles, want) {
		t.Errorf("US Core profiles lack %v", want)
	}
	for _, p := range profiles {
		if !IsResourceType(p.Type) {
			t.Errorf("profile %s constrains %q, not a resource type", p.URL, p.Type)
		}
	}
	// The server CapabilityStatement names 67 combinations; two of them,
	// one SHALL and one SHOULD, as its page lists them.
	combos := USCoreCombinations()
	if len(combos) != 67 {
		t.Errorf("%d US Core search parameter combinations, want 67", len(combos))
	}
	has := func(want Combination) bool {
		return slices.ContainsFunc(combos, func(c Combination) bool {
			return c.Type == want.Type && slices.Equal(c.Required, want.Required) && len(c.Optional) == 0 && c.Expectation == want.Expectation
		})
	}
	for _, want := range []Combination{
		{Type: "Observation", Required: []string{"patient", "category", "date"}, Expectation: "SHALL"},
		{Type: "Encounter", Required: []string{"class", "patient"}, Expectation: "SHOULD"},
	} {
		if !has(want) {
			t.Errorf("US Core search parameter combinations lack %v", want)
		}
	}
	for _, c := range combos {
		for _, code := range append(slices.Clone(c.Required), c.Optional...) {
			if !slices.ContainsFunc(params, func(sp SearchParam) bool { return sp.Code == code && slices.Contains(sp.Base, c.Type) }) &&
				!slices.ContainsFunc(SearchParamsFor(c.Type), func(sp SearchParam) bool { return sp.Code == code }) {
				t.Errorf("the combination %s %v names %s, which is no search parameter of %s", c.Type, c.Required, code, c.Type)
			}
		}
	}
}
