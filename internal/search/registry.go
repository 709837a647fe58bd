package search

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"smartfhir/internal/fhir/spec"
	"smartfhir/internal/fhirpath"
)

// Config is what a Registry needs from its caller.
type Config struct {
	// Base is the server's absolute FHIR base URL (no trailing slash):
	// absolute references that start with it are references to resources
	// here, in the index and in queries.
	Base string
	// Now is the clock for the ap prefix (STYLE.md 12); nil means time.Now.
	Now func() time.Time
}

// Param is one search parameter of one resource type, compiled.
type Param struct {
	Code string
	// Type is the SearchParameter.type: number, date, string, token,
	// reference, composite, quantity, uri. Special parameters without an
	// index (_id, _lastUpdated) have the type their values have.
	Type string
	URL  string
	// Expression is the FHIRPath the values come from ("" for _id and
	// _lastUpdated, which are columns of the resource).
	Expression string
	// Targets are the types a reference parameter may point to.
	Targets []string
	// Components are a composite parameter's parts, in order.
	Components []Component

	expr *fhirpath.Expr
	// fold says a token parameter's values are strings, indexed and
	// searched lower-cased (token.go, stringValued).
	fold bool
}

// Component is a part of a composite parameter: its own type and the
// expression that, evaluated on each value of the composite, gives its
// values.
type Component struct {
	Type string
	// Row is the Param code under which its index rows are written:
	// "<composite>$<index>", or the Row of another composite's component
	// that always yields the same rows (see shareComponentRows).
	Row        string
	Expression string
	expr       *fhirpath.Expr
	// fold is Param.fold for a token component.
	fold bool
}

// Registry holds the search parameters of every resource type. It is
// compiled once at start and is safe for concurrent use.
type Registry struct {
	cfg    Config
	byType map[string]map[string]*Param
	// ordered holds each type's parameters of byType that have index rows
	// of their own (all but unions), sorted by code: Index evaluates them
	// in that order for every resource written.
	ordered map[string][]*Param
	// compartment maps a type to the reference parameters that put a
	// resource in a Patient's compartment.
	compartment map[string][]string
	// withPatient holds, by type, the parameters that a search parameter
	// combination of US Core uses together with `patient`
	// (CombinedWithPatient).
	withPatient map[string]map[string]bool
	// unions maps a type to its union parameters and their members
	// (union.go).
	unions      map[string]map[string][]string
	fingerprint string
}

// Special parameters that apply to every resource and are answered from
// the resource table rather than an index.
var resourceParams = []*Param{
	{Code: "_id", Type: "token", URL: "http://hl7.org/fhir/SearchParameter/Resource-id"},
	{Code: "_lastUpdated", Type: "date", URL: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"},
}

// indexedTypes are the parameter types the engine indexes and queries.
var indexedTypes = map[string]bool{
	"number": true, "date": true, "string": true, "token": true,
	"reference": true, "composite": true, "quantity": true, "uri": true,
}

// NewRegistry compiles every R4 core SearchParameter and every US Core
// 6.1.0 one (where both define a code for a type, US Core's definition is
// used: it is what a US Core server claims). Parameters without an
// expression or of type special are left out: they are reported as
// unsupported when used.
func NewRegistry(cfg Config) (*Registry, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Base = strings.TrimSuffix(cfg.Base, "/")
	r := &Registry{cfg: cfg, byType: map[string]map[string]*Param{}, compartment: map[string][]string{}, withPatient: map[string]map[string]bool{}}
	byURL := map[string]spec.SearchParam{}
	core, usCore := spec.SearchParams(), spec.USCoreSearchParams()
	for _, sp := range core {
		byURL[sp.URL] = sp
	}
	for _, sp := range usCore {
		byURL[sp.URL] = sp
	}
	types := spec.ResourceTypes()
	h := sha256.New()
	add := func(sp spec.SearchParam) error {
		if !indexedTypes[sp.Type] || sp.Expression == "" {
			return nil
		}
		p, err := compileParam(sp, byURL)
		if err != nil {
			return err
		}
		js, _ := json.Marshal(sp)
		h.Write(js)
		for _, t := range appliesTo(sp.Base, types) {
			m := r.byType[t]
			if m == nil {
				m = map[string]*Param{}
				r.byType[t] = m
			}
			m[p.Code] = p
		}
		return nil
	}
	for _, sp := range core {
		if sp.Code == "_id" || sp.Code == "_lastUpdated" {
			continue
		}
		if err := add(sp); err != nil {
			return nil, err
		}
	}
	for _, sp := range usCore {
		if err := add(sp); err != nil {
			return nil, err
		}
	}
	r.shareComponentRows()
	r.findUnions()
	for _, t := range slices.Sorted(maps.Keys(r.unions)) {
		for _, code := range slices.Sorted(maps.Keys(r.unions[t])) {
			h.Write([]byte("union " + t + "." + code + ":" + strings.Join(r.unions[t][code], ",") + ";"))
		}
	}
	// The layout of the rows is part of what the index depends on.
	h.Write([]byte(indexFormat))
	// In a fixed order: the fingerprint must not change between starts,
	// or every start re-indexes everything.
	comp := spec.Compartment("Patient")
	for _, t := range slices.Sorted(maps.Keys(comp)) {
		params := comp[t]
		r.compartment[t] = slices.Clone(params)
		h.Write([]byte(t + ":" + strings.Join(params, ",") + ";"))
	}
	r.combineWithPatient()
	for _, t := range slices.Sorted(maps.Keys(r.withPatient)) {
		h.Write([]byte("patient+" + t + ":" + strings.Join(slices.Sorted(maps.Keys(r.withPatient[t])), ",") + ";"))
	}
	r.fingerprint = hex.EncodeToString(h.Sum(nil))[:16]
	r.ordered = make(map[string][]*Param, len(r.byType))
	for t, m := range r.byType {
		var ps []*Param
		for code, p := range m {
			if r.unions[t][code] == nil {
				ps = append(ps, p)
			}
		}
		slices.SortFunc(ps, func(a, b *Param) int { return strings.Compare(a.Code, b.Code) })
		r.ordered[t] = ps
	}
	return r, nil
}

// appliesTo expands a SearchParameter.base into concrete resource types.
func appliesTo(base, types []string) []string {
	var out []string
	for _, b := range base {
		switch b {
		case "Resource":
			return types
		case "DomainResource":
			for _, t := range types {
				if st := spec.Lookup(t); st != nil && st.Base == "DomainResource" {
					out = append(out, t)
				}
			}
		default:
			out = append(out, b)
		}
	}
	return out
}

func compileParam(sp spec.SearchParam, byURL map[string]spec.SearchParam) (*Param, error) {
	p := &Param{Code: sp.Code, Type: sp.Type, URL: sp.URL, Expression: sp.Expression, Targets: sp.Target}
	var err error
	if p.expr, err = fhirpath.Compile(sp.Expression); err != nil {
		return nil, fmt.Errorf("search parameter %s: %w", sp.URL, err)
	}
	p.fold = p.Type == "token" && stringValued(p.expr, nil)
	var base []string // the types of a composite's values, for its components'
	if len(sp.Components) > 0 {
		base, _ = p.expr.ValueTypes(nil, fhirpath.SpecTypes)
	}
	for i, c := range sp.Components {
		def, ok := byURL[c.Definition]
		if !ok {
			return nil, fmt.Errorf("search parameter %s: component %s is not defined", sp.URL, c.Definition)
		}
		ce, err := fhirpath.Compile(c.Expression)
		if err != nil {
			return nil, fmt.Errorf("search parameter %s: component %d: %w", sp.URL, i, err)
		}
		p.Components = append(p.Components, Component{Type: def.Type, Row: CompositeParam(sp.Code, i), Expression: c.Expression, expr: ce,
			fold: def.Type == "token" && base != nil && stringValued(ce, base)})
	}
	return p, nil
}

// indexFormat names the way Index lays out rows; changing it re-indexes
// stored data. v2: composite components share rows (shareComponentRows)
// and have no :text or :of-type rows. v3: a union parameter has no rows
// of its own (union.go). v4: a string-valued token parameter's rows hold
// its values lower-cased (token.go), and a Timing's range takes in its
// repeat.boundsPeriod (date.go).
const indexFormat = "index-format:v4"

// shareComponentRows makes components of different composite parameters
// that always yield the same rows write them once: two composites with the
// same expression whose components have the same expression and type
// (code-value-quantity and code-value-concept both evaluate "code" on
// "Observation") get the same groups and the same rows for them. The rows
// go under the name the smallest such component would have. An Observation
// has seven composites, most of them sharing their first component; it
// saved a fifth of the index rows of synthea-120.
func (r *Registry) shareComponentRows() {
	var params []*Param
	seen := map[*Param]bool{}
	for _, t := range slices.Sorted(maps.Keys(r.byType)) {
		for _, code := range slices.Sorted(maps.Keys(r.byType[t])) {
			if p := r.byType[t][code]; p.Type == "composite" && !seen[p] {
				seen[p] = true
				params = append(params, p)
			}
		}
	}
	key := func(p *Param, c *Component) string { return p.Expression + "\x00" + c.Expression + "\x00" + c.Type }
	row := map[string]string{}
	for _, p := range params {
		for i := range p.Components {
			k := key(p, &p.Components[i])
			if have, ok := row[k]; !ok || p.Components[i].Row < have {
				row[k] = p.Components[i].Row
			}
		}
	}
	for _, p := range params {
		for i := range p.Components {
			p.Components[i].Row = row[key(p, &p.Components[i])]
		}
	}
}

// combineWithPatient fills withPatient from the US Core server's search
// parameter combinations: each parameter that a combination naming
// `patient` requires or allows beside it, where the type has both.
func (r *Registry) combineWithPatient() {
	for _, c := range spec.USCoreCombinations() {
		params := append(slices.Clone(c.Required), c.Optional...)
		if !slices.Contains(params, PatientParam) || r.byType[c.Type][PatientParam] == nil {
			continue
		}
		for _, code := range params {
			if code == PatientParam || r.byType[c.Type][code] == nil {
				continue
			}
			if r.withPatient[c.Type] == nil {
				r.withPatient[c.Type] = map[string]bool{}
			}
			r.withPatient[c.Type][code] = true
		}
	}
}

// PatientParam is the reference parameter that names a resource's patient
// in the US Core searches (Observation?patient=…&category=…).
const PatientParam = "patient"

// CombinedWithPatient reports whether a search parameter combination of
// US Core 6.1.0 uses parameter code of resourceType together with
// `patient` (Observation?patient=…&category=…): the searches for one
// patient's resources that a US Core client makes. A store may index
// those parameters by patient as well.
func (r *Registry) CombinedWithPatient(resourceType, code string) bool {
	return r.withPatient[resourceType][code]
}

// CompositeParam is the Param code under which the index rows of
// component i of composite parameter code are written.
func CompositeParam(code string, i int) string { return fmt.Sprintf("%s$%d", code, i) }

// Fingerprint identifies the parameter set: it changes when a definition
// the index depends on changes, which is when stored data must be
// re-indexed.
func (r *Registry) Fingerprint() string { return r.fingerprint }

// Base is the FHIR base URL the registry was configured with.
func (r *Registry) Base() string { return r.cfg.Base }

// Param returns the search parameter code of resourceType, or nil. _id
// and _lastUpdated are parameters of every type.
func (r *Registry) Param(resourceType, code string) *Param {
	for _, p := range resourceParams {
		if p.Code == code && spec.IsResourceType(resourceType) {
			return p
		}
	}
	return r.byType[resourceType][code]
}

// Params returns the search parameters of resourceType sorted by code,
// _id and _lastUpdated included (what the CapabilityStatement lists).
func (r *Registry) Params(resourceType string) []*Param {
	if !spec.IsResourceType(resourceType) {
		return nil
	}
	out := slices.Clone(resourceParams)
	for _, p := range r.byType[resourceType] {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// IndexKeys lists, for each resource type, the Param codes under which
// Index may write its rows: every parameter of the type, the :text and
// :of-type rows of a token parameter and the Row of each composite
// component. The stores give each (type, code) pair a small integer key.
func (r *Registry) IndexKeys() map[string][]string {
	out := make(map[string][]string, len(r.byType))
	for t, m := range r.byType {
		seen := map[string]bool{}
		for code, p := range m {
			seen[code] = true
			if p.Type == "token" {
				seen[TextRow(code)] = true
				seen[OfTypeRow(code)] = true
			}
			for _, c := range p.Components {
				seen[c.Row] = true
			}
		}
		out[t] = slices.Sorted(maps.Keys(seen))
	}
	return out
}

// CompartmentParams returns the reference parameters of resourceType that
// put a resource in a Patient's compartment (nil when the type is not in
// the compartment).
func (r *Registry) CompartmentParams(resourceType string) []string {
	return r.compartment[resourceType]
}
