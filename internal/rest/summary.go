package rest

import (
	"encoding/json"
	"strings"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhir/spec"
)

// shaper applies _summary and _elements to a resource body
// (search.html#summary, search.html#elements). A shaped resource is
// marked with the SUBSETTED tag, as the spec asks, so that no client takes
// it for the whole resource.
type shaper struct {
	summary  string
	elements []string
}

// subsetted is the meta.tag of a resource that is not complete.
var subsetted = json.RawMessage(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`)

func (s shaper) apply(typ string, body []byte) ([]byte, error) {
	keep := s.keep(typ)
	if keep == nil {
		return body, nil
	}
	obj, err := fhir.ParseObject(body)
	if err != nil {
		return nil, err
	}
	out := make(fhir.Object, 0, len(obj))
	for _, m := range obj {
		if keep(m.Name) {
			out = append(out, m)
		}
	}
	out.Set("meta", withSubsetted(out.Get("meta")))
	return json.Marshal(out)
}

// keep returns which top-level JSON members stay, or nil when the body is
// served whole.
func (s shaper) keep(typ string) func(name string) bool {
	t := spec.Lookup(typ)
	if t == nil {
		return nil
	}
	always := func(name string) bool { return name == "resourceType" || name == "id" || name == "meta" }
	// element returns the element a JSON member (or its _name twin) is.
	element := func(name string) *spec.Element {
		f, ok := t.Children.Field(strings.TrimPrefix(name, "_"))
		if !ok {
			return nil
		}
		return f.Element
	}
	switch {
	case len(s.elements) > 0 && s.summary == "":
		want := map[string]bool{}
		for _, e := range s.elements {
			want[strings.TrimPrefix(e, typ+".")] = true
		}
		return func(name string) bool {
			if always(name) {
				return true
			}
			e := element(name)
			if e == nil {
				return false
			}
			return want[e.Name] || want[strings.TrimSuffix(e.Name, "[x]")] || e.Min > 0
		}
	case s.summary == "true":
		return func(name string) bool {
			if always(name) {
				return true
			}
			e := element(name)
			return e != nil && (e.Summary || e.Min > 0)
		}
	case s.summary == "text":
		return func(name string) bool {
			if always(name) || name == "text" {
				return true
			}
			e := element(name)
			return e != nil && e.Min > 0
		}
	case s.summary == "data":
		return func(name string) bool { return name != "text" }
	}
	return nil
}

// withSubsetted adds the SUBSETTED tag to a meta object (or makes one).
func withSubsetted(meta json.RawMessage) json.RawMessage {
	m, err := fhir.ParseObject(meta)
	if len(meta) == 0 || err != nil {
		m = fhir.Object{}
	}
	var tags []json.RawMessage
	if raw := m.Get("tag"); raw != nil {
		_ = json.Unmarshal(raw, &tags)
	}
	tags = append(tags, subsetted)
	tb, _ := json.Marshal(tags)
	m.Set("tag", tb)
	b, _ := json.Marshal(m)
	return b
}
