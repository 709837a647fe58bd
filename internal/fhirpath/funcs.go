package fhirpath

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// funcDef is a FHIRPath function of the supported subset.
type funcDef struct {
	name             string
	minArgs, maxArgs int
	// typeArg: the single argument is a type specifier, not an expression.
	typeArg bool
	call    func(c *evalCtx, input []Node, f *funcExpr) ([]Node, error)
}

// functions lists the supported functions, by FHIRPath N1 section.
var functions = map[string]*funcDef{}

func init() {
	for _, f := range []*funcDef{
		// Existence
		{name: "empty", call: fnEmpty},
		{name: "exists", maxArgs: 1, call: fnExists},
		{name: "all", minArgs: 1, maxArgs: 1, call: fnAll},
		{name: "hasValue", call: fnHasValue},
		{name: "count", call: fnCount},
		{name: "distinct", call: fnDistinct},
		// Filtering and projection
		{name: "where", minArgs: 1, maxArgs: 1, call: fnWhere},
		{name: "select", minArgs: 1, maxArgs: 1, call: fnSelect},
		{name: "ofType", minArgs: 1, maxArgs: 1, typeArg: true, call: fnOfType},
		// Subsetting
		{name: "single", call: fnSingle},
		{name: "first", call: fnFirst},
		{name: "last", call: fnLast},
		{name: "tail", call: fnTail},
		{name: "skip", minArgs: 1, maxArgs: 1, call: fnSkip},
		{name: "take", minArgs: 1, maxArgs: 1, call: fnTake},
		// Combining
		{name: "union", minArgs: 1, maxArgs: 1, call: fnUnion},
		{name: "combine", minArgs: 1, maxArgs: 1, call: fnCombine},
		// Conversion
		{name: "iif", minArgs: 2, maxArgs: 3, call: fnIif},
		// String manipulation
		{name: "startsWith", minArgs: 1, maxArgs: 1, call: strFunc(strings.HasPrefix)},
		{name: "endsWith", minArgs: 1, maxArgs: 1, call: strFunc(strings.HasSuffix)},
		{name: "contains", minArgs: 1, maxArgs: 1, call: strFunc(strings.Contains)},
		{name: "matches", minArgs: 1, maxArgs: 1, call: fnMatches},
		{name: "lower", call: fnLower},
		{name: "upper", call: fnUpper},
		{name: "length", call: fnLength},
		{name: "substring", minArgs: 1, maxArgs: 2, call: fnSubstring},
		// Tree navigation
		{name: "children", call: fnChildren},
		{name: "descendants", call: fnDescendants},
		// Types (function forms)
		{name: "is", minArgs: 1, maxArgs: 1, typeArg: true, call: fnIs},
		{name: "as", minArgs: 1, maxArgs: 1, typeArg: true, call: fnOfType},
		// Boolean logic
		{name: "not", call: fnNot},
		// FHIR additional functions (R4 fhirpath.html#functions)
		{name: "resolve", call: fnResolve},
		{name: "extension", minArgs: 1, maxArgs: 1, call: fnExtension},
		// hasExtension is not in R4 fhirpath.html#functions but one core SearchParameter
		// (QuestionnaireResponse item-subject) uses it.
		{name: "hasExtension", minArgs: 1, maxArgs: 1, call: fnHasExtension},
	} {
		functions[f.name] = f
	}
}

// lambda evaluates arg once per input item, with that item as $this and
// its position as $index (FHIRPath where, select, exists, all).
func (c *evalCtx) lambda(input []Node, arg expr, fn func(i int, res []Node) (bool, error)) error {
	this, index := c.this, c.index
	defer func() { c.this, c.index = this, index }()
	for i := range input {
		c.this, c.index = input[i:i+1], i
		res, err := c.eval(arg)
		if err != nil {
			return err
		}
		more, err := fn(i, res)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func fnEmpty(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	return boolNode(len(in) == 0), nil
}

func fnExists(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	if len(f.args) == 0 {
		return boolNode(len(in) > 0), nil
	}
	found := false
	err := c.lambda(in, f.args[0], func(_ int, res []Node) (bool, error) {
		b, known, err := truth(res)
		found = known && b
		return !found, err
	})
	return boolNode(found), err
}

func fnAll(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	all := true
	err := c.lambda(in, f.args[0], func(_ int, res []Node) (bool, error) {
		b, known, err := truth(res)
		all = known && b
		return all, err
	})
	return boolNode(all), err
}

func fnWhere(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	var out []Node
	err := c.lambda(in, f.args[0], func(i int, res []Node) (bool, error) {
		b, known, err := truth(res)
		if known && b {
			out = append(out, in[i])
		}
		return true, err
	})
	return out, err
}

func fnSelect(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	var out []Node
	err := c.lambda(in, f.args[0], func(_ int, res []Node) (bool, error) {
		out = append(out, res...)
		return true, nil
	})
	return out, err
}

func fnOfType(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	return c.ofType(in, f.typ), nil
}

func fnIs(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	n, ok, err := singleton(in, "is()")
	if err != nil || !ok {
		return nil, err
	}
	return boolNode(c.isType(n, f.typ)), nil
}

func fnHasValue(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	if len(in) != 1 {
		return boolNode(false), nil
	}
	_, complex := in[0].Value.(map[string]any)
	return boolNode(in[0].Value != nil && !complex), nil
}

func fnCount(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	return []Node{intNode(len(in))}, nil
}

func fnDistinct(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	return union(in, nil), nil
}

func fnSingle(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	if len(in) > 1 {
		return nil, fmt.Errorf("single() on %d items", len(in))
	}
	return in, nil
}

func fnFirst(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	if len(in) == 0 {
		return nil, nil
	}
	return in[:1], nil
}

func fnLast(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	if len(in) == 0 {
		return nil, nil
	}
	return in[len(in)-1:], nil
}

func fnTail(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	if len(in) == 0 {
		return nil, nil
	}
	return in[1:], nil
}

func fnSkip(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	n, err := c.intArg(f.args[0])
	if err != nil {
		return nil, err
	}
	return in[min(max(n, 0), len(in)):], nil
}

func fnTake(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	n, err := c.intArg(f.args[0])
	if err != nil {
		return nil, err
	}
	return in[:min(max(n, 0), len(in))], nil
}

func (c *evalCtx) intArg(arg expr) (int, error) {
	v, err := c.eval(arg)
	if err != nil {
		return 0, err
	}
	n, ok, err := integerArg(v)
	if err == nil && !ok {
		err = fmt.Errorf("expected an integer, got an empty collection")
	}
	return n, err
}

func (c *evalCtx) strArg(arg expr, what string) (string, bool, error) {
	v, err := c.eval(arg)
	if err != nil {
		return "", false, err
	}
	return stringArg(v, what)
}

func fnUnion(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	other, err := c.eval(f.args[0])
	return union(in, other), err
}

func fnCombine(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	other, err := c.eval(f.args[0])
	return append(slices.Clip(in), other...), err
}

func fnIif(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	if len(in) > 1 {
		return nil, fmt.Errorf("iif() on %d items", len(in))
	}
	if len(in) == 1 {
		this := c.this
		c.this = in
		defer func() { c.this = this }()
	}
	cond, err := c.eval(f.args[0])
	if err != nil {
		return nil, err
	}
	b, known, err := truth(cond)
	switch {
	case err != nil:
		return nil, err
	case known && b:
		return c.eval(f.args[1])
	case len(f.args) == 3:
		return c.eval(f.args[2])
	}
	return nil, nil
}

// strFunc adapts a (value, argument) string predicate.
func strFunc(pred func(s, arg string) bool) func(*evalCtx, []Node, *funcExpr) ([]Node, error) {
	return func(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
		s, ok, err := stringArg(in, f.fn.name+"()")
		if err != nil || !ok {
			return nil, err
		}
		arg, ok, err := c.strArg(f.args[0], f.fn.name+"()")
		if err != nil || !ok {
			return nil, err
		}
		return boolNode(pred(s, arg)), nil
	}
}

func fnMatches(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	s, ok, err := stringArg(in, "matches()")
	if err != nil || !ok {
		return nil, err
	}
	pattern, ok, err := c.strArg(f.args[0], "matches()")
	if err != nil || !ok {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("matches(): %w", err)
	}
	return boolNode(re.MatchString(s)), nil
}

func fnLower(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	s, ok, err := stringArg(in, "lower()")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{{Value: strings.ToLower(s), Type: "System.String"}}, nil
}

func fnUpper(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	s, ok, err := stringArg(in, "upper()")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{{Value: strings.ToUpper(s), Type: "System.String"}}, nil
}

func fnLength(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	s, ok, err := stringArg(in, "length()")
	if err != nil || !ok {
		return nil, err
	}
	return []Node{intNode(utf8.RuneCountInString(s))}, nil
}

func fnSubstring(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	s, ok, err := stringArg(in, "substring()")
	if err != nil || !ok {
		return nil, err
	}
	r := []rune(s)
	start, err := c.intArg(f.args[0])
	if err != nil {
		return nil, err
	}
	if start < 0 || start >= len(r) {
		return nil, nil
	}
	end := len(r)
	if len(f.args) == 2 {
		n, err := c.intArg(f.args[1])
		if err != nil {
			return nil, err
		}
		end = min(start+max(n, 0), len(r))
	}
	return []Node{{Value: string(r[start:end]), Type: "System.String"}}, nil
}

func fnNot(_ *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	b, known, err := truth(in)
	if err != nil || !known {
		return nil, err
	}
	return boolNode(!b), nil
}

// fnChildren returns every child element of every input item, in the
// order of the JSON object's keys sorted, so that results are stable.
func fnChildren(c *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	var out []Node
	for _, n := range in {
		out = c.allChildren(n, out)
	}
	return out, nil
}

func fnDescendants(c *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	var out []Node
	level := in
	for len(level) > 0 {
		var next []Node
		for _, n := range level {
			next = c.allChildren(n, next)
		}
		if c.steps += len(next); c.steps > maxSteps {
			return nil, errTooCostly
		}
		out = append(out, next...)
		level = next
	}
	return out, nil
}

func (c *evalCtx) allChildren(n Node, out []Node) []Node {
	m, ok := n.Value.(map[string]any)
	if !ok {
		if n.ext != nil {
			out = c.children(n, "id", out)
			out = c.children(n, "extension", out)
		}
		return out
	}
	names := make([]string, 0, len(m))
	seen := map[string]bool{}
	for k := range m {
		k = strings.TrimPrefix(k, "_")
		if k != "resourceType" && !seen[k] {
			seen[k] = true
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		v, ext := m[k], m["_"+k]
		typ, def := c.fieldType(n, k)
		out = appendValues(out, v, ext, typ, def)
	}
	return out
}

// fieldType returns the type and definition key of the JSON property key
// of n, which may be a choice element's typed name (valueQuantity).
func (c *evalCtx) fieldType(n Node, key string) (typ, def string) {
	if c.types != nil && n.def != "" {
		if types, ok := c.types.ElementType(n.def, key); ok && len(types) == 1 {
			return types[0], childDef(n.def, key, types[0])
		}
		for i := 1; i < len(key); i++ {
			if key[i] < 'A' || key[i] > 'Z' {
				continue
			}
			types, ok := c.types.ElementType(n.def, key[:i])
			if !ok {
				continue
			}
			for _, t := range types {
				if strings.EqualFold(t, key[i:]) && t[1:] == key[i+1:] {
					return t, t
				}
			}
		}
	}
	return "", ""
}

// fnResolve implements resolve() (R4 fhirpath.html#functions) for Reference values
// and reference strings: a contained resource for "#id", else what
// Env.Resolve returns, else a resource that has only the type and id the
// reference spells. References whose type cannot be known (urn:uuid:,
// conditional references, logical references) resolve to nothing.
func fnResolve(c *evalCtx, in []Node, _ *funcExpr) ([]Node, error) {
	var out []Node
	for _, n := range in {
		var ref string
		switch v := n.Value.(type) {
		case string:
			ref = v
		case map[string]any:
			ref, _ = v["reference"].(string)
		}
		if ref == "" {
			continue
		}
		if id, ok := strings.CutPrefix(ref, "#"); ok {
			out = c.containedResource(id, out)
			continue
		}
		if c.resolve != nil {
			if m, ok := c.resolve(ref); ok {
				out = appendValue(out, m, nil, "", "")
				continue
			}
		}
		if typ, id, ok := c.referenceTarget(ref); ok {
			out = appendValue(out, map[string]any{"resourceType": typ, "id": id}, nil, typ, typ)
		}
	}
	return out, nil
}

func (c *evalCtx) containedResource(id string, out []Node) []Node {
	m, _ := c.root.Value.(map[string]any)
	contained, _ := m["contained"].([]any)
	for _, r := range contained {
		if cm, ok := r.(map[string]any); ok && cm["id"] == id {
			return appendValue(out, cm, nil, "", "")
		}
	}
	return out
}

// referenceTarget reads the type and id from a relative ("Patient/1",
// "Patient/1/_history/2") or absolute ("https://x/fhir/Patient/1")
// literal reference (R4 references.html#literal).
func (c *evalCtx) referenceTarget(ref string) (typ, id string, ok bool) {
	if strings.HasPrefix(ref, "urn:") || strings.ContainsAny(ref, "?#") {
		return "", "", false
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || parts[n-1] == "" {
		return "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	if !c.isResourceTypeName(typ) {
		return "", "", false
	}
	return typ, id, true
}

// isResourceTypeName reports whether name can be a resource type: with
// definitions, a type deriving from Resource; without, a capitalised word.
func (c *evalCtx) isResourceTypeName(name string) bool {
	if name == "" || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		if !isIdentStart(name[i]) || name[i] == '_' {
			return false
		}
	}
	if c.types == nil {
		return true
	}
	return c.isType(Node{Type: name}, "Resource")
}

func fnExtension(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	url, ok, err := c.strArg(f.args[0], "extension()")
	if err != nil || !ok {
		return nil, err
	}
	var out []Node
	for _, n := range in {
		for _, e := range c.children(n, "extension", nil) {
			if m, ok := e.Value.(map[string]any); ok && m["url"] == url {
				e.Type, e.def = "Extension", "Extension"
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func fnHasExtension(c *evalCtx, in []Node, f *funcExpr) ([]Node, error) {
	exts, err := fnExtension(c, in, f)
	return boolNode(len(exts) > 0), err
}
