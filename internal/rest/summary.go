package rest

import (
	"encoding/json"
	"errors"
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
	// keeps holds keep's answer per resource type, made on first use.
	keeps map[string]func(name string) bool
}

// subsetted is the meta.tag of a resource that is not complete.
var subsetted = json.RawMessage(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`)

// apply returns body shaped for the request. A stored body is compact JSON
// already: its members are copied as they are, without decoding them and
// without encoding/json checking them once more (a page of 50 Observations
// with _elements took three times as long as the whole resources). Any
// other body is parsed first.
func (s *shaper) apply(typ string, body []byte) ([]byte, error) {
	keep, ok := s.keeps[typ]
	if !ok {
		keep = s.keep(typ)
		if s.keeps == nil {
			s.keeps = map[string]func(string) bool{}
		}
		s.keeps[typ] = keep
	}
	if keep == nil {
		return body, nil
	}
	out := make([]byte, 1, len(body)+len(subsetted)+32)
	out[0] = '{'
	hasMeta := false
	err := fhir.CompactMembers(body, func(name string, value []byte) error {
		if !keep(name) {
			return nil
		}
		if name == "meta" {
			value, hasMeta = withSubsetted(value), true
		}
		out = appendMember(out, name, value)
		return nil
	})
	if err != nil {
		return shapeParsed(keep, body)
	}
	if !hasMeta {
		out = appendMember(out, "meta", withSubsetted(nil))
	}
	return append(out, '}'), nil
}

// appendMember appends "name":value to the members of an object being
// written in out (which holds at least its opening brace).
func appendMember(out []byte, name string, value []byte) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	if plainName(name) {
		out = append(out, '"')
		out = append(out, name...)
		out = append(out, '"')
	} else {
		q, _ := json.Marshal(name)
		out = append(out, q...)
	}
	out = append(out, ':')
	return append(out, value...)
}

// plainName reports whether a member name needs no escaping in JSON: FHIR's
// element names are letters, digits and underscores.
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// shapeParsed is apply for a body that is not compact JSON.
func shapeParsed(keep func(string) bool, body []byte) ([]byte, error) {
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
// A compact meta, as stored, has its members copied and the tag appended
// to its tag array; any other is parsed.
func withSubsetted(meta json.RawMessage) json.RawMessage {
	out := make([]byte, 1, len(meta)+len(subsetted)+16)
	out[0] = '{'
	tagged := false
	err := fhir.CompactMembers(meta, func(name string, value []byte) error {
		if name == "tag" {
			if len(value) < 2 || value[0] != '[' {
				return errors.New("meta.tag is not an array")
			}
			tags := make([]byte, 0, len(value)+len(subsetted)+1)
			tags = append(tags, value[:len(value)-1]...)
			if len(value) > 2 {
				tags = append(tags, ',')
			}
			tags = append(tags, subsetted...)
			value, tagged = append(tags, ']'), true
		}
		out = appendMember(out, name, value)
		return nil
	})
	if err != nil && len(meta) > 0 {
		return withSubsettedParsed(meta)
	}
	if !tagged {
		out = appendMember(out, "tag", append(append([]byte{'['}, subsetted...), ']'))
	}
	return append(out, '}')
}

// withSubsettedParsed is withSubsetted for a meta that is not compact JSON.
func withSubsettedParsed(meta json.RawMessage) json.RawMessage {
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
