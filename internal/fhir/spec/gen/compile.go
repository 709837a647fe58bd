package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ---- output: the table package spec embeds (keep in sync with spec/table.go) ----

type table struct {
	Types        []typeOut        `json:"types"`
	ValueSets    []valueSetOut    `json:"valueSets"`
	SearchParams []searchParamOut `json:"searchParams"`
	Compartments []compartmentOut `json:"compartments"`
}

type typeOut struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Abstract bool      `json:"abstract,omitempty"`
	Base     string    `json:"base,omitempty"`
	Regex    string    `json:"regex,omitempty"`
	Elements []elemOut `json:"elements"`
}

type elemOut struct {
	Path    string   `json:"path"`
	Min     int      `json:"min"`
	Max     int      `json:"max"`
	Types   []string `json:"types,omitempty"`
	Ref     string   `json:"ref,omitempty"`
	Binding string   `json:"binding,omitempty"`
	Summary bool     `json:"summary,omitempty"`
}

type valueSetOut struct {
	URL     string        `json:"url"`
	Systems []systemCodes `json:"systems"`
}

type systemCodes struct {
	System string   `json:"system"`
	Codes  []string `json:"codes"`
}

type searchParamOut struct {
	URL         string         `json:"url"`
	Name        string         `json:"name"`
	Code        string         `json:"code"`
	Base        []string       `json:"base,omitempty"`
	Type        string         `json:"type"`
	Expression  string         `json:"expression,omitempty"`
	Target      []string       `json:"target,omitempty"`
	Modifier    []string       `json:"modifier,omitempty"`
	Comparator  []string       `json:"comparator,omitempty"`
	MultipleOr  *bool          `json:"multipleOr,omitempty"`
	MultipleAnd *bool          `json:"multipleAnd,omitempty"`
	Component   []componentOut `json:"component,omitempty"`
}

type componentOut struct {
	Definition string `json:"definition"`
	Expression string `json:"expression"`
}

type compartmentOut struct {
	Code      string              `json:"code"`
	Resources map[string][]string `json:"resources"` // encoding/json sorts map keys
}

const (
	extFHIRType = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
	extRegex    = "http://hl7.org/fhir/StructureDefinition/regex"
)

func compile(p *pkgFiles) (*table, error) {
	t := &table{}
	vsIndex := map[string]bool{} // expanded value sets already in t.ValueSets
	exp := &expander{p: p, cache: map[string][]systemCodes{}, failed: map[string]bool{}}

	sort.Slice(p.structDefs, func(i, j int) bool { return p.structDefs[i].Name < p.structDefs[j].Name })
	for _, sd := range p.structDefs {
		switch sd.Kind {
		case "resource", "complex-type", "primitive-type":
		default:
			continue // logical models
		}
		// Profiles (derivation "constraint") restrict a type; the base
		// definitions (no derivation: Element, Resource) and specializations
		// are the types themselves.
		if sd.Derivation == "constraint" || sd.Name != sd.Type {
			continue
		}
		to := typeOut{Name: sd.Name, Kind: sd.Kind, Abstract: sd.Abstract}
		if b := sd.BaseDefinition; b != "" {
			to.Base = b[strings.LastIndexByte(b, '/')+1:]
		}
		for _, ed := range sd.Snapshot.Element {
			if ed.Path == sd.Name {
				continue // the root describes the type itself
			}
			if sd.Kind == "primitive-type" && ed.Path == sd.Name+".value" {
				// The value of a primitive is the JSON value itself; its
				// lexical rule is the regex extension on its type.
				for _, ty := range ed.Type {
					for _, x := range ty.Extension {
						if x.URL == extRegex {
							to.Regex = x.ValueString
						}
					}
				}
				continue
			}
			eo := elemOut{Path: ed.Path, Min: ed.Min, Max: -1, Summary: ed.IsSummary}
			if ed.Max != "*" {
				n, err := strconv.Atoi(ed.Max)
				if err != nil {
					return nil, fmt.Errorf("%s: max %q: %w", ed.Path, ed.Max, err)
				}
				eo.Max = n
			}
			eo.Ref = strings.TrimPrefix(ed.ContentReference, "#")
			for _, ty := range ed.Type {
				eo.Types = append(eo.Types, typeCode(sd, ed.Path, ty.Code, ty.Extension))
			}
			if b := ed.Binding; b != nil && b.Strength == "required" && b.ValueSet != "" {
				url, _, _ := strings.Cut(b.ValueSet, "|")
				if codes, ok := exp.expand(url); ok {
					eo.Binding = url
					if !vsIndex[url] {
						vsIndex[url] = true
						t.ValueSets = append(t.ValueSets, valueSetOut{URL: url, Systems: codes})
					}
				}
			}
			to.Elements = append(to.Elements, eo)
		}
		t.Types = append(t.Types, to)
	}
	sort.Slice(t.ValueSets, func(i, j int) bool { return t.ValueSets[i].URL < t.ValueSets[j].URL })

	t.SearchParams = compileSearchParams(p.searchParams)

	for _, cd := range p.compartments {
		co := compartmentOut{Code: cd.Code, Resources: map[string][]string{}}
		for _, r := range cd.Resource {
			if len(r.Param) > 0 {
				co.Resources[r.Code] = sorted(r.Param)
			}
		}
		t.Compartments = append(t.Compartments, co)
	}
	sort.Slice(t.Compartments, func(i, j int) bool { return t.Compartments[i].Code < t.Compartments[j].Code })
	return t, nil
}

// typeCode names the FHIR type of an element. The snapshots type the ids
// and the values of primitives with FHIRPath system types
// (http://hl7.org/fhirpath/System.String) and give the FHIR type in an
// extension; Resource.id is documented as id (FHIR R4 §2.36.0 Resource) but
// typed string there, so it is mapped back to id.
func typeCode(sd structureDefinition, path, code string, exts []extension) string {
	if !strings.HasPrefix(code, "http://hl7.org/fhirpath/System.") {
		return code
	}
	if sd.Kind == "resource" && path == sd.Name+".id" {
		return "id"
	}
	for _, x := range exts {
		if x.URL == extFHIRType && x.ValueURL != "" {
			return x.ValueURL
		}
	}
	return "string"
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// expander expands value sets from the code systems of the package
// (ValueSet.compose, FHIR R4 §4.9.5). It handles includes of whole code
// systems (nested concepts included), listed concepts, imported value sets,
// is-a / descendent-of filters on concepts of in-package code systems, and
// excludes of listed concepts. Anything else makes the value set not
// expandable, and its binding is left unchecked.
type expander struct {
	p      *pkgFiles
	cache  map[string][]systemCodes
	failed map[string]bool
	depth  int
}

func (e *expander) expand(url string) ([]systemCodes, bool) {
	if c, ok := e.cache[url]; ok {
		return c, true
	}
	if e.failed[url] || e.depth > 8 {
		return nil, false
	}
	e.depth++
	defer func() { e.depth-- }()
	codes, ok := e.expandUncached(url)
	if !ok {
		e.failed[url] = true
		return nil, false
	}
	e.cache[url] = codes
	return codes, true
}

func (e *expander) expandUncached(url string) ([]systemCodes, bool) {
	vs := e.p.valueSets[url]
	if vs == nil || vs.Compose == nil || len(vs.Compose.Include) == 0 {
		return nil, false
	}
	set := map[string]map[string]bool{} // system -> codes
	add := func(sys, code string) {
		if set[sys] == nil {
			set[sys] = map[string]bool{}
		}
		set[sys][code] = true
	}
	for _, inc := range vs.Compose.Include {
		got, ok := e.include(inc)
		if !ok {
			return nil, false
		}
		for _, sc := range got {
			for _, c := range sc.Codes {
				add(sc.System, c)
			}
		}
	}
	for _, exc := range vs.Compose.Exclude {
		if len(exc.Filter) > 0 || len(exc.ValueSet) > 0 || len(exc.Concept) == 0 {
			got, ok := e.include(exc)
			if !ok {
				return nil, false
			}
			for _, sc := range got {
				for _, c := range sc.Codes {
					delete(set[sc.System], c)
				}
			}
			continue
		}
		for _, c := range exc.Concept {
			delete(set[exc.System], c.Code)
		}
	}
	var out []systemCodes
	n := 0
	for sys, codes := range set {
		if len(codes) == 0 {
			continue
		}
		sc := systemCodes{System: sys}
		for c := range codes {
			sc.Codes = append(sc.Codes, c)
		}
		sort.Strings(sc.Codes)
		n += len(sc.Codes)
		out = append(out, sc)
	}
	if n == 0 || n > maxCodes {
		return nil, false
	}
	sort.Slice(out, func(i, j int) bool { return out[i].System < out[j].System })
	return out, true
}

// include returns the codes one compose.include (or exclude) selects.
func (e *expander) include(inc vsInclude) ([]systemCodes, bool) {
	var parts [][]systemCodes
	if len(inc.ValueSet) > 0 {
		var union []systemCodes
		for _, u := range inc.ValueSet {
			u, _, _ = strings.Cut(u, "|")
			c, ok := e.expand(u)
			if !ok {
				return nil, false
			}
			union = append(union, c...)
		}
		parts = append(parts, union)
	}
	if inc.System != "" {
		var codes []string
		switch {
		case len(inc.Concept) > 0:
			for _, c := range inc.Concept {
				codes = append(codes, c.Code)
			}
		default:
			cs := e.p.codeSystems[inc.System]
			if cs == nil || cs.Content != "complete" {
				return nil, false
			}
			roots := cs.Concept
			for _, f := range inc.Filter {
				if f.Property != "concept" || (f.Op != "is-a" && f.Op != "descendent-of") {
					return nil, false
				}
				c := find(roots, f.Value)
				if c == nil {
					return nil, false
				}
				if f.Op == "is-a" {
					roots = []concept{*c}
				} else {
					roots = c.Concept
				}
			}
			codes = flatten(roots, nil)
		}
		parts = append(parts, []systemCodes{{System: inc.System, Codes: codes}})
	}
	switch len(parts) {
	case 0:
		return nil, false
	case 1:
		return parts[0], true
	}
	// Both a system and value sets: the intersection (R4 §4.9.5).
	in := map[string]bool{}
	for _, sc := range parts[0] {
		for _, c := range sc.Codes {
			in[sc.System+"|"+c] = true
		}
	}
	var out []systemCodes
	for _, sc := range parts[1] {
		keep := systemCodes{System: sc.System}
		for _, c := range sc.Codes {
			if in[sc.System+"|"+c] {
				keep.Codes = append(keep.Codes, c)
			}
		}
		out = append(out, keep)
	}
	return out, true
}

func find(cs []concept, code string) *concept {
	for i := range cs {
		if cs[i].Code == code {
			return &cs[i]
		}
		if c := find(cs[i].Concept, code); c != nil {
			return c
		}
	}
	return nil
}

func flatten(cs []concept, out []string) []string {
	for _, c := range cs {
		out = append(out, c.Code)
		out = flatten(c.Concept, out)
	}
	return out
}

// compileSearchParams converts SearchParameters to their table form, sorted
// by first base type, then code, then URL.
func compileSearchParams(list []searchParameter) []searchParamOut {
	out := make([]searchParamOut, 0, len(list))
	for _, sp := range list {
		so := searchParamOut{
			URL: sp.URL, Name: sp.Name, Code: sp.Code, Base: sorted(sp.Base), Type: sp.Type,
			Expression: sp.Expression, Target: sorted(sp.Target), Modifier: sorted(sp.Modifier),
			Comparator: sorted(sp.Comparator), MultipleOr: sp.MultipleOr, MultipleAnd: sp.MultipleAnd,
		}
		for _, c := range sp.Component {
			so.Component = append(so.Component, componentOut{Definition: c.Definition, Expression: c.Expression})
		}
		out = append(out, so)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ab, bb := first(a.Base), first(b.Base); ab != bb {
			return ab < bb
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.URL < b.URL
	})
	return out
}
