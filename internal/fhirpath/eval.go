package fhirpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Env is what an evaluation may draw on beyond the resource itself.
type Env struct {
	// Types gives element types; SpecTypes for the R4 definitions. Nil
	// leaves Node.Type empty where only the definitions could tell it.
	Types TypeResolver
	// Resolve fetches the resource a reference names, for resolve(). It may
	// be nil: resolve() then yields, for a reference whose target type can
	// be read from the reference itself ("Patient/123", an absolute URL
	// ending in Patient/123, a "#id" contained resource), a resource that
	// has only that type and id — enough for "resolve() is Patient", which
	// is what SearchParameter expressions use it for.
	Resolve func(reference string) (resource map[string]any, ok bool)
}

// evalCtx is the state of one evaluation.
type evalCtx struct {
	types   TypeResolver
	resolve func(string) (map[string]any, bool)
	root    Node   // %resource
	context Node   // %context
	this    []Node // the focus of terms that start an expression: $this
	index   int    // $index inside where(), select(), ...
	steps   int    // work done, bounded by maxSteps
}

// maxSteps bounds the work of one evaluation (nodes produced), so that an
// expression such as descendants().descendants() on a large resource ends.
const maxSteps = 5_000_000

var errTooCostly = errors.New("evaluation exceeds its work limit")

// Evaluate evaluates the expression with resource as %resource, %context
// and the initial focus. resource is normally a map[string]any decoded by
// encoding/json with UseNumber; float64 numbers are accepted too. Errors
// come from type errors the FHIRPath specification defines as such, e.g. a
// function that needs a single item applied to several. The nodes share
// the resource's maps and the expression's literals: callers must not
// modify them.
func (e *Expr) Evaluate(resource any, env Env) ([]Node, error) {
	root := rootNode(resource)
	return e.evaluate(root, root, env)
}

// EvaluateAt evaluates the expression with focus as the initial focus and
// %context, and resource as %resource: how the components of a composite
// SearchParameter are evaluated on each value of its expression (R4
// search.html#composite).
func (e *Expr) EvaluateAt(resource any, focus Node, env Env) ([]Node, error) {
	return e.evaluate(rootNode(resource), focus, env)
}

func rootNode(resource any) Node {
	root := Node{Value: resource}
	if m, ok := resource.(map[string]any); ok {
		if rt, ok := m["resourceType"].(string); ok {
			root.Type, root.def = rt, rt
		}
	}
	return root
}

func (e *Expr) evaluate(root, focus Node, env Env) ([]Node, error) {
	c := &evalCtx{types: env.Types, resolve: env.Resolve, root: root, context: focus, this: []Node{focus}}
	out, err := c.eval(e.root)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", e.src, err)
	}
	return out, nil
}

func (c *evalCtx) eval(e expr) ([]Node, error) {
	switch e := e.(type) {
	case *literalExpr:
		return e.vals, nil
	case *memberExpr:
		// A capitalised name that starts a path is a type: "Observation.code"
		// evaluated on a Condition yields nothing (FHIRPath "Path selection").
		if n := e.name[0]; n >= 'A' && n <= 'Z' {
			var out []Node
			for _, it := range c.this {
				if c.isType(it, e.name) {
					out = append(out, it)
				}
			}
			return out, nil
		}
		return c.invoke(e, c.this)
	case *dotExpr:
		left, err := c.eval(e.left)
		if err != nil {
			return nil, err
		}
		return c.invoke(e.right, left)
	case *funcExpr:
		return c.invoke(e, c.this)
	case *variableExpr:
		if e.name == "index" {
			return []Node{intNode(c.index)}, nil
		}
		return c.this, nil
	case *externalExpr:
		switch e.name {
		case "resource", "rootResource":
			return []Node{c.root}, nil
		case "context":
			return []Node{c.context}, nil
		}
		return []Node{{Value: constants[e.name], Type: "System.String"}}, nil
	case *indexExpr:
		left, err := c.eval(e.left)
		if err != nil {
			return nil, err
		}
		idx, err := c.eval(e.index)
		if err != nil {
			return nil, err
		}
		i, ok, err := integerArg(idx)
		if err != nil || !ok {
			return nil, err
		}
		if i < 0 || i >= len(left) {
			return nil, nil
		}
		return left[i : i+1], nil
	case *typeOpExpr:
		x, err := c.eval(e.x)
		if err != nil {
			return nil, err
		}
		if e.op == "is" {
			if len(x) == 0 {
				return nil, nil
			}
			if len(x) > 1 {
				return nil, fmt.Errorf("'is' needs a single item, got %d", len(x))
			}
			return boolNode(c.isType(x[0], e.typ)), nil
		}
		// "as" on several items filters them like ofType(): the core
		// SearchParameters apply it to repeating elements
		// (Observation.component.value as Quantity).
		return c.ofType(x, e.typ), nil
	case *unaryExpr:
		x, err := c.eval(e.x)
		if err != nil {
			return nil, err
		}
		if e.op == "+" {
			return x, nil
		}
		return negate(x)
	case *binaryExpr:
		return c.binary(e)
	}
	return nil, fmt.Errorf("internal error: unknown expression %T", e)
}

// invoke applies a member name, function or $this/$index to an input
// collection: the right side of a dot.
func (c *evalCtx) invoke(e expr, input []Node) ([]Node, error) {
	switch e := e.(type) {
	case *memberExpr:
		var out []Node
		for _, n := range input {
			out = c.children(n, e.name, out)
		}
		if c.steps += len(out); c.steps > maxSteps {
			return nil, errTooCostly
		}
		return out, nil
	case *funcExpr:
		out, err := e.fn.call(c, input, e)
		if c.steps += len(out); c.steps > maxSteps {
			return nil, errTooCostly
		}
		return out, err
	case *variableExpr:
		return c.eval(e)
	}
	return nil, fmt.Errorf("internal error: cannot invoke %T", e)
}

func (c *evalCtx) ofType(in []Node, typ string) []Node {
	var out []Node
	for _, n := range in {
		if c.isType(n, typ) {
			out = append(out, n)
		}
	}
	return out
}

// children appends to out the child elements called name of n
// (FHIRPath "Path selection"; R4 json.html#primitive for primitive extensions).
func (c *evalCtx) children(n Node, name string, out []Node) []Node {
	m, ok := n.Value.(map[string]any)
	if !ok {
		// A primitive's id and extensions live in its "_name" object.
		if n.ext != nil && (name == "extension" || name == "id") {
			typ := "Extension"
			if name == "id" {
				typ = "string"
			}
			return appendValues(out, n.ext[name], nil, typ, typ)
		}
		return out
	}
	var types []string
	known := false
	if c.types != nil && n.def != "" {
		types, known = c.types.ElementType(n.def, name)
	}
	v, has := m[name]
	ext, hasExt := m["_"+name]
	if has || hasExt {
		if !known {
			// A choice element named with its type: valueDateTime.
			typ, def := c.fieldType(n, name)
			return appendValues(out, v, ext, typ, def)
		}
		typ := ""
		if len(types) == 1 {
			typ = types[0]
		}
		return appendValues(out, v, ext, typ, childDef(n.def, name, typ))
	}
	if known {
		if len(types) == 0 {
			return out
		}
		// A choice element: its JSON name is name + the type's name with
		// a capital (R4 formats.html#choice).
		for _, t := range types {
			if t == "" {
				continue
			}
			key := name + strings.ToUpper(t[:1]) + t[1:]
			v, has := m[key]
			ext, hasExt := m["_"+key]
			if has || hasExt {
				return appendValues(out, v, ext, t, t)
			}
		}
		return out
	}
	// Without definitions, read the type from the JSON name.
	for key, v := range m {
		if len(key) <= len(name) || !strings.HasPrefix(key, name) {
			continue
		}
		suffix := key[len(name):]
		if suffix[0] < 'A' || suffix[0] > 'Z' {
			continue
		}
		t := suffix
		if lower := strings.ToLower(suffix[:1]) + suffix[1:]; primitiveTypes[lower] {
			t = lower
		}
		return appendValues(out, v, m["_"+key], t, t)
	}
	return out
}

// appendValues appends the JSON value v (one value or an array) as nodes
// of type typ, pairing primitives with their "_name" extension objects.
func appendValues(out []Node, v, ext any, typ, def string) []Node {
	if arr, ok := v.([]any); ok {
		exts, _ := ext.([]any)
		for i, item := range arr {
			var e any
			if i < len(exts) {
				e = exts[i]
			}
			out = appendValue(out, item, e, typ, def)
		}
		// "_given" may be longer than "given" when trailing values have
		// only extensions.
		for i := len(arr); i < len(exts); i++ {
			out = appendValue(out, nil, exts[i], typ, def)
		}
		return out
	}
	if exts, ok := ext.([]any); ok && v == nil {
		for _, e := range exts {
			out = appendValue(out, nil, e, typ, def)
		}
		return out
	}
	return appendValue(out, v, ext, typ, def)
}

func appendValue(out []Node, v, ext any, typ, def string) []Node {
	e, _ := ext.(map[string]any)
	if v == nil && e == nil {
		return out
	}
	n := Node{Value: v, Type: typ, def: def, ext: e}
	if m, ok := v.(map[string]any); ok {
		// A resource in Bundle.entry.resource or contained is typed by
		// its resourceType, not by the element's declared type Resource.
		if rt, ok := m["resourceType"].(string); ok {
			n.Type, n.def = rt, rt
		}
	}
	if n.Type == "" {
		n.def = ""
	}
	return append(out, n)
}

func boolNode(b bool) []Node { return []Node{{Value: b, Type: "System.Boolean"}} }

func intNode(i int) Node {
	return Node{Value: json.Number(fmt.Sprint(i)), Type: "System.Integer"}
}

// truth is FHIRPath singleton evaluation of a collection as a Boolean
// ("Singleton evaluation of collections"): empty is unknown, one Boolean is itself, any other single item
// is true, and several items are an error.
func truth(in []Node) (value, known bool, err error) {
	switch len(in) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := in[0].Value.(bool); ok {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("expected a single Boolean, got %d items", len(in))
}

// singleton returns the only item of in, or ok=false for an empty
// collection; several items are an error ("Singleton evaluation of collections").
func singleton(in []Node, what string) (Node, bool, error) {
	switch len(in) {
	case 0:
		return Node{}, false, nil
	case 1:
		return in[0], true, nil
	}
	return Node{}, false, fmt.Errorf("%s needs a single item, got %d", what, len(in))
}

// stringArg reads a single string argument, ok=false when empty.
func stringArg(in []Node, what string) (string, bool, error) {
	n, ok, err := singleton(in, what)
	if err != nil || !ok || n.Value == nil {
		return "", false, err
	}
	s, isStr := n.Value.(string)
	if !isStr {
		return "", false, fmt.Errorf("%s needs a string, got %T", what, n.Value)
	}
	return s, true, nil
}

func integerArg(in []Node) (int, bool, error) {
	n, ok, err := singleton(in, "an index")
	if err != nil || !ok {
		return 0, false, err
	}
	r, isNum := number(n.Value)
	if !isNum || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false, fmt.Errorf("expected an integer, got %v", n.Value)
	}
	i := r.Num().Int64()
	if i > 1<<31 || i < -(1<<31) {
		return 0, false, fmt.Errorf("integer %d out of range", i)
	}
	return int(i), true, nil
}
