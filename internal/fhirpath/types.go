package fhirpath

import (
	"strings"

	"smartfhir/internal/fhir/spec"
)

// Node is one item of a FHIRPath result collection.
type Node struct {
	// Value is the item: map[string]any for a complex value or a resource,
	// string, json.Number or bool for a primitive. It is nil for a
	// primitive element that has only an id or extensions (the JSON
	// "_birthDate" without "birthDate"); such an element exists for
	// FHIRPath but has no value to index.
	Value any
	// Type is the FHIR type name where it is known: "HumanName",
	// "Reference", "Period", "dateTime", "code", the resource type of a
	// resource, "BackboneElement" for an element defined inline. Literals
	// and computed values carry a FHIRPath system type ("System.String",
	// "System.Boolean", "System.Integer", "System.Decimal", "System.Date",
	// "System.DateTime"). Empty when the definitions do not say.
	Type string

	// ext is the "_name" object of a primitive (its id and extensions).
	ext map[string]any
	// def names the definition that holds this node's children: a type
	// name ("HumanName") or, for an element defined inline, its path
	// ("Observation.component").
	def string
}

// TypeResolver tells the evaluator the types of elements, from the
// structure definitions. A nil TypeResolver is allowed: the evaluator then
// knows only resource types (from resourceType) and the types that choice
// element names spell (valueQuantity → Quantity).
type TypeResolver interface {
	// ElementType returns the declared types of the child element name of
	// parent, where parent is a type name ("HumanName") or, for elements
	// defined inline, an element path ("Observation.component"). A choice
	// element is asked for by its bare name ("value") and returns every
	// allowed type; an element defined by a content reference returns the
	// types of the element it refers to. ok is false when parent or name is
	// unknown.
	ElementType(parent, name string) (types []string, ok bool)
	// BaseType returns the type that typeName specializes ("Age" →
	// "Quantity", "code" → "string", "Patient" → "DomainResource"); ok is
	// false at the root of the hierarchy or for an unknown type.
	BaseType(typeName string) (base string, ok bool)
}

// SpecTypes resolves types from the embedded FHIR R4 definitions
// (smartfhir/internal/fhir/spec).
var SpecTypes TypeResolver = specTypes{}

type specTypes struct{}

var _ TypeResolver = specTypes{}

func (specTypes) ElementType(parent, name string) ([]string, bool) {
	typeName, rest, _ := strings.Cut(parent, ".")
	t := spec.Lookup(typeName)
	if t == nil {
		return nil, false
	}
	children := t.Children
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, ".")
		e := children.Child(seg)
		if e == nil || e.Children == nil {
			return nil, false
		}
		children = e.Children
	}
	e := children.Child(name)
	if e == nil {
		e = children.Child(name + "[x]")
	}
	if e == nil {
		return nil, false
	}
	if len(e.Types) == 0 && e.ContentRef != "" {
		// Questionnaire.item.item reuses Questionnaire.item: same type.
		if e.Children == nil {
			return nil, false
		}
		return []string{"BackboneElement"}, true
	}
	return e.Types, true
}

func (specTypes) BaseType(typeName string) (string, bool) {
	t := spec.Lookup(typeName)
	if t == nil || t.Base == "" {
		return "", false
	}
	return t.Base, true
}

// systemTypes are the FHIRPath system types, which a type specifier may
// name without the System namespace.
var systemTypes = map[string]bool{
	"Boolean": true, "String": true, "Integer": true, "Decimal": true,
	"Date": true, "DateTime": true, "Time": true,
}

// canonicalType normalises a type specifier: FHIR.Quantity → Quantity,
// String → System.String.
func canonicalType(name string) string {
	if s, ok := strings.CutPrefix(name, "FHIR."); ok {
		return s
	}
	if systemTypes[name] {
		return "System." + name
	}
	return name
}

// primitiveTypes are the FHIR R4 primitive types (R4 datatypes.html#primitive), needed to
// spell a choice element's type from its JSON name when no TypeResolver
// knows it: valueDateTime is a dateTime, valueQuantity a Quantity.
var primitiveTypes = map[string]bool{
	"base64Binary": true, "boolean": true, "canonical": true, "code": true,
	"date": true, "dateTime": true, "decimal": true, "id": true,
	"instant": true, "integer": true, "markdown": true, "oid": true,
	"positiveInt": true, "string": true, "time": true, "unsignedInt": true,
	"uri": true, "url": true, "uuid": true, "xhtml": true,
}

// isType reports whether n is of type typ or a subtype of it (FHIRPath
// "Types": is and as consider the type hierarchy).
func (c *evalCtx) isType(n Node, typ string) bool {
	for t, i := n.Type, 0; t != "" && i < 16; i++ {
		if t == typ {
			return true
		}
		if c.types == nil {
			return false
		}
		base, ok := c.types.BaseType(t)
		if !ok {
			return false
		}
		t = base
	}
	return false
}

// childDef returns the definition key of a child element of the given type:
// its own path when its children are defined inline, else its type.
func childDef(parentDef, name, typ string) string {
	if typ == "BackboneElement" || typ == "Element" {
		if parentDef == "" {
			return ""
		}
		return parentDef + "." + name
	}
	return typ
}
