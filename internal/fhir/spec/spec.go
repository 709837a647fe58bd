package spec

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

//go:generate go run ./gen

//go:embed r4.json.gz
var tableGz []byte

// Kind is the kind of a type (StructureDefinition.kind).
type Kind uint8

// The kinds of types.
const (
	Primitive Kind = iota + 1 // primitive-type: boolean, string, dateTime, …
	Complex                   // complex-type: HumanName, Quantity, BackboneElement, …
	Resource                  // resource: Patient, Bundle, and the abstract Resource and DomainResource
)

func (k Kind) String() string {
	switch k {
	case Primitive:
		return "primitive-type"
	case Complex:
		return "complex-type"
	case Resource:
		return "resource"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Type is a resource type or a data type (a StructureDefinition of
// derivation specialization, or one of the base types Element and Resource).
type Type struct {
	Name     string
	Kind     Kind
	Abstract bool   // Resource, DomainResource, Element, BackboneElement
	Base     string // the type it specializes ("" for Element and Resource)
	// Regex is the lexical rule of a primitive type's value, from the
	// http://hl7.org/fhir/StructureDefinition/regex extension (R4 §2.24.0.1);
	// empty for complex types and xhtml.
	Regex string
	// Elements are all elements of the type in snapshot order, at any depth.
	Elements []*Element
	// Children are the elements a JSON object of this type may hold at its
	// top level (for primitives: id and extension, held in the _name object).
	Children *Children
}

// Element is one ElementDefinition of a type's snapshot.
type Element struct {
	Name string // last segment of Path, "value[x]" for a choice
	Path string // "Observation.referenceRange.low"
	Min  int
	Max  int // -1 for unbounded ("*")
	// Types are the type codes; a choice element lists every allowed type.
	// Empty for an element defined by a content reference.
	Types  []string
	Choice bool
	// Summary is ElementDefinition.isSummary: the element is part of the
	// _summary=true view (R4 search.html#summary).
	Summary bool
	// ContentRef is the path of the element whose definition this one reuses
	// (Questionnaire.item.item → "Questionnaire.item"), or "".
	ContentRef string
	// Binding is the value set of a required binding (R4 §4.1.0.1) when it
	// could be expanded from the core package, else nil.
	Binding *ValueSet
	// Children are the element's own children when it defines them inline
	// (BackboneElement, Element) or through ContentRef; nil when its children
	// are those of its type.
	Children *Children
}

// Repeats reports whether the element may occur more than once, i.e. is a
// JSON array.
func (e *Element) Repeats() bool { return e.Max != 1 }

// Field is what a JSON property name means in an object: the element it
// belongs to and the type of its value (for a choice, the type its name
// selects: valueQuantity → Quantity).
type Field struct {
	Element *Element
	Type    string
}

// Children are the elements one JSON object may hold.
type Children struct {
	fields   map[string]Field    // by JSON property name
	byName   map[string]*Element // by element name ("value[x]")
	list     []*Element
	required []*Element
}

// Field resolves a JSON property name (not the _name of a primitive's
// extensions) to its element and type.
func (c *Children) Field(jsonName string) (Field, bool) {
	f, ok := c.fields[jsonName]
	return f, ok
}

// Child returns the element with the given element name ("value[x]" for a
// choice), or nil.
func (c *Children) Child(name string) *Element { return c.byName[name] }

// List returns the elements in definition order.
func (c *Children) List() []*Element { return c.list }

// Required returns the elements with min ≥ 1.
func (c *Children) Required() []*Element { return c.required }

// ValueSet is an expanded value set.
type ValueSet struct {
	URL     string
	Codings []Coding // sorted by system, then code
	codes   map[string]struct{}
	codings map[Coding]struct{}
}

// Coding is one code of a code system.
type Coding struct{ System, Code string }

// HasCode reports whether code is in the value set in any of its systems
// (how a required binding on a code element is checked).
func (v *ValueSet) HasCode(code string) bool {
	_, ok := v.codes[code]
	return ok
}

// HasCoding reports whether (system, code) is in the value set.
func (v *ValueSet) HasCoding(system, code string) bool {
	_, ok := v.codings[Coding{system, code}]
	return ok
}

// SearchParam is a SearchParameter of the core package (R4 §3.1.1.5).
type SearchParam struct {
	URL        string
	Name       string
	Code       string
	Base       []string // resource types; "Resource" or "DomainResource" for the common ones
	Type       string   // number, date, string, token, reference, composite, quantity, uri, special
	Expression string   // FHIRPath; empty for a few special parameters
	Target     []string // resource types a reference parameter may point to
	Modifier   []string
	Comparator []string
	// MultipleOr and MultipleAnd are true unless the definition says false.
	MultipleOr  bool
	MultipleAnd bool
	Components  []Component
}

// Component is a part of a composite search parameter.
type Component struct {
	Definition string // canonical URL of the component's SearchParameter
	Expression string // FHIRPath relative to the composite's expression
}

// tables is the decoded, indexed table.
type tables struct {
	types         map[string]*Type
	resourceTypes []string
	searchParams  []SearchParam
	compartments  map[string]map[string][]string
}

var load = sync.OnceValue(func() *tables {
	t, err := decode(tableGz)
	if err != nil {
		// The table is compiled into the binary and checked by the tests:
		// failing to read it is a build defect, not a runtime condition.
		panic("spec: embedded table: " + err.Error())
	}
	return t
})

// ResourceTypes returns the names of all concrete R4 resource types, sorted.
func ResourceTypes() []string { return slices.Clone(load().resourceTypes) }

// IsResourceType reports whether name is a concrete R4 resource type.
func IsResourceType(name string) bool {
	t := load().types[name]
	return t != nil && t.Kind == Resource && !t.Abstract
}

// Lookup returns the resource or data type of that name, or nil.
func Lookup(typeName string) *Type { return load().types[typeName] }

// SearchParams returns every SearchParameter of the core package, sorted by
// first base type, then code, then URL.
func SearchParams() []SearchParam { return slices.Clone(load().searchParams) }

// SearchParamsFor returns the search parameters that apply to a resource
// type: those whose base names it, Resource or DomainResource. Sorted by code.
func SearchParamsFor(resourceType string) []SearchParam {
	t := load().types[resourceType]
	if t == nil {
		return nil
	}
	var out []SearchParam
	for _, sp := range load().searchParams {
		for _, b := range sp.Base {
			if b == resourceType || b == "Resource" || (b == "DomainResource" && t.Base == "DomainResource") {
				out = append(out, sp)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b SearchParam) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// Compartment returns, for the compartment of that name (Patient, Encounter,
// RelatedPerson, Practitioner, Device), each resource type in it and the
// search parameters that link a resource of that type to the compartment
// (R4 §3.1.0.3, CompartmentDefinition.resource.param). Types with no
// parameter are not in the compartment and are absent. Nil for an unknown
// compartment. The map is shared: do not modify it.
func Compartment(name string) map[string][]string { return load().compartments[name] }

// ---- decoding (mirrors the output types of ./gen) ----

type tableJSON struct {
	Types []struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Abstract bool   `json:"abstract"`
		Base     string `json:"base"`
		Regex    string `json:"regex"`
		Elements []struct {
			Path    string   `json:"path"`
			Min     int      `json:"min"`
			Max     int      `json:"max"`
			Types   []string `json:"types"`
			Ref     string   `json:"ref"`
			Binding string   `json:"binding"`
			Summary bool     `json:"summary"`
		} `json:"elements"`
	} `json:"types"`
	ValueSets []struct {
		URL     string `json:"url"`
		Systems []struct {
			System string   `json:"system"`
			Codes  []string `json:"codes"`
		} `json:"systems"`
	} `json:"valueSets"`
	SearchParams []searchParamJSON `json:"searchParams"`
	Compartments []struct {
		Code      string              `json:"code"`
		Resources map[string][]string `json:"resources"`
	} `json:"compartments"`
}

type searchParamJSON struct {
	URL         string   `json:"url"`
	Name        string   `json:"name"`
	Code        string   `json:"code"`
	Base        []string `json:"base"`
	Type        string   `json:"type"`
	Expression  string   `json:"expression"`
	Target      []string `json:"target"`
	Modifier    []string `json:"modifier"`
	Comparator  []string `json:"comparator"`
	MultipleOr  *bool    `json:"multipleOr"`
	MultipleAnd *bool    `json:"multipleAnd"`
	Component   []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

func (s searchParamJSON) param() SearchParam {
	sp := SearchParam{
		URL: s.URL, Name: s.Name, Code: s.Code, Base: s.Base, Type: s.Type,
		Expression: s.Expression, Target: s.Target, Modifier: s.Modifier, Comparator: s.Comparator,
		MultipleOr: s.MultipleOr == nil || *s.MultipleOr, MultipleAnd: s.MultipleAnd == nil || *s.MultipleAnd,
	}
	for _, c := range s.Component {
		sp.Components = append(sp.Components, Component{Definition: c.Definition, Expression: c.Expression})
	}
	return sp
}

func decode(gz []byte) (*tables, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var tj tableJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, err
	}

	valueSets := map[string]*ValueSet{}
	for _, v := range tj.ValueSets {
		vs := &ValueSet{URL: v.URL, codes: map[string]struct{}{}, codings: map[Coding]struct{}{}}
		for _, s := range v.Systems {
			for _, c := range s.Codes {
				cd := Coding{s.System, c}
				vs.Codings = append(vs.Codings, cd)
				vs.codes[c] = struct{}{}
				vs.codings[cd] = struct{}{}
			}
		}
		valueSets[v.URL] = vs
	}

	t := &tables{types: map[string]*Type{}, compartments: map[string]map[string][]string{}}
	for _, tj := range tj.Types {
		ty := &Type{Name: tj.Name, Base: tj.Base, Abstract: tj.Abstract, Regex: tj.Regex}
		switch tj.Kind {
		case "primitive-type":
			ty.Kind = Primitive
		case "complex-type":
			ty.Kind = Complex
		case "resource":
			ty.Kind = Resource
		default:
			return nil, fmt.Errorf("type %s: unknown kind %q", tj.Name, tj.Kind)
		}
		byPath := map[string]*Element{}
		for _, ej := range tj.Elements {
			e := &Element{
				Path: ej.Path, Name: ej.Path[strings.LastIndexByte(ej.Path, '.')+1:],
				Min: ej.Min, Max: ej.Max, Types: ej.Types, ContentRef: ej.Ref, Summary: ej.Summary,
			}
			e.Choice = strings.HasSuffix(e.Name, "[x]")
			if ej.Binding != "" {
				if e.Binding = valueSets[ej.Binding]; e.Binding == nil {
					return nil, fmt.Errorf("%s: unknown value set %s", e.Path, ej.Binding)
				}
			}
			ty.Elements = append(ty.Elements, e)
			byPath[e.Path] = e
		}
		// Attach each element to its parent: the type itself or an element
		// that defines children inline.
		ty.Children = newChildren()
		for _, e := range ty.Elements {
			parentPath := e.Path[:strings.LastIndexByte(e.Path, '.')]
			parent := ty.Children
			if parentPath != ty.Name {
				pe := byPath[parentPath]
				if pe == nil {
					return nil, fmt.Errorf("%s: no parent element", e.Path)
				}
				if pe.Children == nil {
					pe.Children = newChildren()
				}
				parent = pe.Children
			}
			parent.add(e)
		}
		for _, e := range ty.Elements {
			if e.ContentRef == "" {
				continue
			}
			target := byPath[e.ContentRef]
			if target == nil || target.Children == nil {
				return nil, fmt.Errorf("%s: content reference %s not found", e.Path, e.ContentRef)
			}
			e.Children = target.Children
		}
		t.types[ty.Name] = ty
		if ty.Kind == Resource && !ty.Abstract {
			t.resourceTypes = append(t.resourceTypes, ty.Name)
		}
	}
	slices.Sort(t.resourceTypes)

	for _, s := range tj.SearchParams {
		t.searchParams = append(t.searchParams, s.param())
	}
	for _, c := range tj.Compartments {
		t.compartments[c.Code] = c.Resources
	}
	return t, nil
}

func newChildren() *Children {
	return &Children{fields: map[string]Field{}, byName: map[string]*Element{}}
}

func (c *Children) add(e *Element) {
	c.list = append(c.list, e)
	c.byName[e.Name] = e
	if e.Min > 0 {
		c.required = append(c.required, e)
	}
	if !e.Choice {
		var typ string
		if len(e.Types) == 1 {
			typ = e.Types[0]
		}
		c.fields[e.Name] = Field{Element: e, Type: typ}
		return
	}
	// A choice element value[x] appears in JSON as value + the type name
	// with its first letter upper-cased (R4 §2.24.0.1 "Choice of data types").
	stem := strings.TrimSuffix(e.Name, "[x]")
	for _, typ := range e.Types {
		c.fields[stem+strings.ToUpper(typ[:1])+typ[1:]] = Field{Element: e, Type: typ}
	}
}
