package validate

import (
	"fmt"
	"strconv"
	"strings"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhir/spec"
)

// MaxIssues caps the issues one validation reports: past that, the client
// has enough to fix and the server stops spending time on a bad body.
const MaxIssues = 50

// IssueType codes (FHIR R4 ValueSet issue-type) used in the outcome.
const (
	issueStructure   = "structure"
	issueRequired    = "required"
	issueValue       = "value"
	issueCodeInvalid = "code-invalid"
	issueInvalid     = "invalid"
)

// Resource validates one FHIR R4 resource in JSON. It returns nil when the
// resource is valid, else a *fhir.Error with code fhir.Invalid and one issue
// per problem (at most MaxIssues), each naming the offending element as a
// FHIRPath with indexes (Patient.name[1].given[0]). It is safe for concurrent
// use.
func Resource(raw []byte) error {
	root, err := parse(raw)
	if err != nil {
		return &fhir.Error{Code: fhir.Invalid, Message: err.Error(), Issues: []fhir.Issue{{
			Severity: "error", Code: issueStructure, Diagnostics: err.Error(),
		}}}
	}
	w := walker{}
	if root.kind != kObject {
		w.report(issueStructure, "a resource must be a JSON object, not %s", describe(&root))
	} else {
		w.resource(&root, "", false)
	}
	if len(w.issues) == 0 {
		return nil
	}
	msg := w.issues[0].Diagnostics
	if n := len(w.issues); n > 1 {
		msg += fmt.Sprintf(" (and %d more issues)", n-1)
	}
	return &fhir.Error{Code: fhir.Invalid, Message: msg, Issues: w.issues}
}

// seg is one step of the FHIRPath to the current element.
type seg struct {
	name  string
	index int // -1: not in an array
}

type walker struct {
	path   []seg
	issues []fhir.Issue
	full   bool
}

func (w *walker) push(name string, index int) { w.path = append(w.path, seg{name, index}) }
func (w *walker) pop()                        { w.path = w.path[:len(w.path)-1] }

func (w *walker) expr() string {
	var b strings.Builder
	for i, s := range w.path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// report adds an issue about the current element.
func (w *walker) report(code, format string, args ...any) {
	if w.full {
		return
	}
	if len(w.issues) == MaxIssues {
		w.full = true
		return
	}
	is := fhir.Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if e := w.expr(); e != "" {
		is.Expression = []string{e}
		is.Diagnostics = e + ": " + is.Diagnostics
	}
	w.issues = append(w.issues, is)
}

// reportAt adds an issue about the child name of the current element.
func (w *walker) reportAt(name string, index int, code, format string, args ...any) {
	w.push(name, index)
	w.report(code, format, args...)
	w.pop()
}

// resource validates a resource object. field is "" for the top level, else
// the name of the element holding it (contained, resource, …), already on
// the path.
func (w *walker) resource(n *node, field string, contained bool) {
	rt := n.member("resourceType")
	if rt == nil {
		w.report(issueStructure, "missing resourceType")
		return
	}
	if rt.kind != kString {
		w.reportAt("resourceType", -1, issueStructure, "resourceType must be a string, not %s", describe(rt))
		return
	}
	if !spec.IsResourceType(rt.str) {
		w.reportAt("resourceType", -1, issueInvalid, "unknown resource type %s", quote(rt.str))
		return
	}
	if field == "" {
		w.push(rt.str, -1)
		defer w.pop()
	}
	if contained {
		// R4 §2.36.0.1 (dom-2): a contained resource holds no contained
		// resources; it needs an id to be referenced from its container.
		if c := n.member("contained"); c != nil {
			w.reportAt("contained", -1, issueStructure, "a contained resource must not contain resources")
		}
		if n.member("id") == nil {
			w.report(issueRequired, "a contained resource must have an id")
		}
	}
	w.object(n, spec.Lookup(rt.str).Children, true)
}

// member returns the value of the property named key, or nil.
func (n *node) member(key string) *node {
	for i := range n.obj {
		if n.obj[i].key == key {
			return &n.obj[i].val
		}
	}
	return nil
}

// object validates the members of a JSON object whose allowed elements are
// ch. The object is the current element of the path.
func (w *walker) object(n *node, ch *spec.Children, isResource bool) {
	if len(n.obj) == 0 {
		w.report(issueStructure, "an element must not be an empty object")
		return
	}
	// Elements seen, to check duplicates, choices and required elements
	// without allocating a map for the usual small object.
	var seenBuf [32]*spec.Element
	seen := seenBuf[:0]
	for i := range n.obj {
		m := &n.obj[i]
		key := m.key
		for j := 0; j < i; j++ {
			if n.obj[j].key == key {
				w.reportAt(key, -1, issueStructure, "duplicate property %s", quote(key))
			}
		}
		if isResource && key == "resourceType" {
			continue
		}
		name, ext := key, false
		if len(key) > 1 && key[0] == '_' {
			name, ext = key[1:], true
		}
		f, ok := ch.Field(name)
		if !ok {
			w.reportAt(name, -1, issueStructure, "unknown element %s", quote(key))
			continue
		}
		prim := isPrimitive(f.Type)
		if ext && !prim {
			w.reportAt(name, -1, issueStructure, "unknown element %s: only primitives have _ properties", quote(key))
			continue
		}
		e := f.Element
		dup := false
		for _, s := range seen {
			if s == e {
				dup = true
				break
			}
		}
		if dup {
			if e.Choice {
				// Another variant of value[x], or value + _value of the same
				// variant (fine), or the same variant twice (already reported).
				if other := choiceName(n, i, ch, e); other != "" && other != name {
					w.reportAt(name, -1, issueStructure, "only one of %s and %s may be present: %s is a single choice", quote(other), quote(name), e.Name)
					continue
				}
			}
		} else {
			seen = append(seen, e)
		}
		if prim {
			if ext {
				if n.member(name) != nil {
					continue // handled with its value
				}
				w.primitive(name, f, nil, &m.val)
				continue
			}
			w.primitive(name, f, &m.val, n.member("_"+name))
			continue
		}
		w.complex(name, f, &m.val)
	}
	for _, e := range ch.Required() {
		found := false
		for _, s := range seen {
			if s == e {
				found = true
				break
			}
		}
		if !found {
			name := e.Name
			if e.Choice {
				name = strings.TrimSuffix(name, "[x]")
			}
			w.reportAt(name, -1, issueRequired, "missing required element %s (min %d)", e.Name, e.Min)
		}
	}
}

// choiceName returns the JSON name (without _) of the first member before
// index i that belongs to the choice element e.
func choiceName(n *node, i int, ch *spec.Children, e *spec.Element) string {
	for j := 0; j < i; j++ {
		name := strings.TrimPrefix(n.obj[j].key, "_")
		if f, ok := ch.Field(name); ok && f.Element == e {
			return name
		}
	}
	return ""
}

func isPrimitive(typ string) bool {
	t := spec.Lookup(typ)
	return t != nil && t.Kind == spec.Primitive
}

// cardinality checks the JSON shape of an element's value against its max:
// arrays for repeating elements (R4 §2.6.2.3), single values otherwise, no
// empty arrays, no more items than max. It reports whether the items can be
// walked, and returns them.
func (w *walker) cardinality(name string, e *spec.Element, n *node) ([]node, bool) {
	if !e.Repeats() {
		if n.kind == kArray {
			w.reportAt(name, -1, issueStructure, "has max cardinality 1 and must not be an array")
			return nil, false
		}
		return nil, true
	}
	if n.kind != kArray {
		w.reportAt(name, -1, issueStructure, "repeats (max %s) and must be an array", maxString(e.Max))
		return nil, false
	}
	if len(n.arr) == 0 {
		w.reportAt(name, -1, issueStructure, "an array must not be empty")
		return nil, false
	}
	if e.Max > 1 && len(n.arr) > e.Max {
		w.reportAt(name, -1, issueStructure, "allows at most %d values, got %d", e.Max, len(n.arr))
	}
	return n.arr, true
}

func maxString(m int) string {
	if m < 0 {
		return "*"
	}
	return strconv.Itoa(m)
}

// complex validates a non-primitive element's value (one item or an array).
func (w *walker) complex(name string, f spec.Field, n *node) {
	items, ok := w.cardinality(name, f.Element, n)
	if !ok {
		return
	}
	if items == nil {
		w.push(name, -1)
		w.complexItem(f, n)
		w.pop()
		return
	}
	for i := range items {
		w.push(name, i)
		w.complexItem(f, &items[i])
		w.pop()
	}
}

func (w *walker) complexItem(f spec.Field, n *node) {
	if n.kind != kObject {
		w.report(issueStructure, "must be a JSON object, not %s", describe(n))
		return
	}
	e := f.Element
	switch {
	case e.Children != nil:
		w.object(n, e.Children, false)
	case f.Type == "Resource":
		w.resource(n, e.Name, e.Name == "contained")
	default:
		t := spec.Lookup(f.Type)
		if t == nil {
			// Every type the core package names is in the table; an element
			// with none (a content reference) has Children set.
			w.report(issueInvalid, "element %s has no known type %q", e.Path, f.Type)
			return
		}
		w.object(n, t.Children, false)
	}
	if e.Binding != nil {
		w.codedBinding(f, n)
	}
}

// codedBinding checks a Coding or CodeableConcept against a required
// binding (R4 §4.1.0.1: the concept SHALL be from the value set; for a
// CodeableConcept at least one coding SHALL be).
func (w *walker) codedBinding(f spec.Field, n *node) {
	vs := f.Element.Binding
	switch f.Type {
	case "Coding":
		if code, ok := codingIn(vs, n); !ok {
			w.push("code", -1)
			w.report(issueCodeInvalid, "code %s is not in the required value set %s", quote(code), vs.URL)
			w.pop()
		}
	case "CodeableConcept":
		codings := n.member("coding")
		if codings != nil && codings.kind == kArray {
			for i := range codings.arr {
				if _, ok := codingIn(vs, &codings.arr[i]); ok {
					return
				}
			}
		}
		w.report(issueCodeInvalid, "no coding is from the required value set %s", vs.URL)
	}
}

// codingIn reports whether the Coding n is in vs; a Coding with no system is
// matched on its code alone.
func codingIn(vs *spec.ValueSet, n *node) (string, bool) {
	if n.kind != kObject {
		return "", false
	}
	code, system := n.member("code"), n.member("system")
	if code == nil || code.kind != kString {
		return "", false
	}
	if system == nil {
		return code.str, vs.HasCode(code.str)
	}
	if system.kind != kString {
		return code.str, false
	}
	return code.str, vs.HasCoding(system.str, code.str)
}

// primitive validates a primitive element given its value v and the object
// of its id and extensions u (the _name property, R4 §2.6.2.2); either may
// be nil.
func (w *walker) primitive(name string, f spec.Field, v, u *node) {
	e := f.Element
	if !e.Repeats() {
		if v != nil {
			if _, ok := w.cardinality(name, e, v); !ok {
				return
			}
			w.push(name, -1)
			w.primitiveItem(f, v)
			w.pop()
		}
		if u != nil {
			if _, ok := w.cardinality("_"+name, e, u); !ok {
				return
			}
			w.push(name, -1)
			w.primitiveExt(f, u)
			w.pop()
		}
		return
	}
	var vs, us []node
	if v != nil {
		items, ok := w.cardinality(name, e, v)
		if !ok {
			return
		}
		vs = items
	}
	if u != nil {
		items, ok := w.cardinality("_"+name, e, u)
		if !ok {
			return
		}
		us = items
	}
	if vs != nil && us != nil && len(vs) != len(us) {
		w.reportAt(name, -1, issueStructure, "%s has %d values but _%s has %d: the arrays must pair up", name, len(vs), name, len(us))
		return
	}
	for i := range max(len(vs), len(us)) {
		var vi, ui *node
		if vs != nil && vs[i].kind != kNull {
			vi = &vs[i]
		}
		if us != nil && us[i].kind != kNull {
			ui = &us[i]
		}
		w.push(name, i)
		if vi == nil && ui == nil {
			w.report(issueStructure, "null value with no extension")
		}
		if vi != nil {
			w.primitiveItem(f, vi)
		}
		if ui != nil {
			w.primitiveExt(f, ui)
		}
		w.pop()
	}
}

func (w *walker) primitiveItem(f spec.Field, n *node) {
	if reason := checkPrimitive(f.Type, n); reason != "" {
		w.report(issueValue, "%s %s", f.Type, reason)
		return
	}
	if vs := f.Element.Binding; vs != nil && n.kind == kString && !vs.HasCode(n.str) {
		w.report(issueCodeInvalid, "code %s is not in the required value set %s", quote(n.str), vs.URL)
	}
}

// primitiveExt validates the _name object of a primitive: an Element with
// only id and extension.
func (w *walker) primitiveExt(f spec.Field, n *node) {
	if n.kind != kObject {
		w.report(issueStructure, "the _ property of a primitive must be an object, not %s", describe(n))
		return
	}
	w.object(n, spec.Lookup(f.Type).Children, false)
}
