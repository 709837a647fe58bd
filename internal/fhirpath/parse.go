package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"

	"smartfhir/internal/fhir"
)

// The abstract syntax tree. Every node is immutable after Compile, which is
// what makes an *Expr safe for concurrent evaluation.
type expr interface{ String() string }

type (
	// literalExpr is a literal value, or the empty collection {}.
	literalExpr struct{ vals []Node }
	// memberExpr navigates to the child elements called name; at the start
	// of an expression a capitalised name is a type name instead
	// (FHIRPath "Path selection").
	memberExpr struct{ name string }
	// dotExpr evaluates right with left's result as its input.
	dotExpr    struct{ left, right expr }
	indexExpr  struct{ left, index expr }
	binaryExpr struct {
		op          string
		left, right expr
	}
	unaryExpr struct {
		op string
		x  expr
	}
	typeOpExpr struct {
		op, typ string
		x       expr
	} // x is T, x as T
	variableExpr struct{ name string } // $this, $index
	externalExpr struct{ name string } // %resource, %ucum, ...
	funcExpr     struct {
		fn   *funcDef
		args []expr
		typ  string // the type argument of is(), as() and ofType()
	}
)

func (e *literalExpr) String() string {
	if len(e.vals) == 0 {
		return "{}"
	}
	return fmt.Sprint(e.vals[0].Value)
}
func (e *memberExpr) String() string { return e.name }
func (e *dotExpr) String() string    { return e.left.String() + "." + e.right.String() }
func (e *indexExpr) String() string  { return e.left.String() + "[" + e.index.String() + "]" }
func (e *binaryExpr) String() string {
	return "(" + e.left.String() + " " + e.op + " " + e.right.String() + ")"
}
func (e *unaryExpr) String() string    { return e.op + e.x.String() }
func (e *typeOpExpr) String() string   { return "(" + e.x.String() + " " + e.op + " " + e.typ + ")" }
func (e *variableExpr) String() string { return "$" + e.name }
func (e *externalExpr) String() string { return "%" + e.name }
func (e *funcExpr) String() string {
	args := make([]string, len(e.args))
	for i, a := range e.args {
		args[i] = a.String()
	}
	if e.typ != "" {
		args = []string{e.typ}
	}
	return e.fn.name + "(" + strings.Join(args, ", ") + ")"
}

// Expr is a compiled FHIRPath expression. It is immutable and safe for
// concurrent use.
type Expr struct {
	src  string
	root expr
}

// String returns the source text the expression was compiled from.
func (e *Expr) String() string { return e.src }

// Compile parses a FHIRPath expression. It fails on syntax errors, unknown
// functions, wrong argument counts and features outside the supported
// subset (see the package documentation).
func Compile(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	p := &parser{toks: toks}
	root, err := p.parseExpr(0)
	if err == nil && p.peek().kind != tokEOF {
		err = p.errorf("unexpected %q", p.peek().text)
	}
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	return &Expr{src: src, root: root}, nil
}

// MustCompile is Compile for expressions known to be valid; it panics on
// error.
func MustCompile(src string) *Expr {
	e, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return e
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// maxDepth bounds the nesting of the recursive descent, so that hostile
// input (granular scopes, fuzzing) cannot exhaust the stack.
const maxDepth = 200

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at %d: %s", p.peek().pos, fmt.Sprintf(format, args...))
}

func (p *parser) isOp(text string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == text
}

func (p *parser) expectOp(text string) error {
	if !p.isOp(text) {
		return p.errorf("expected %q", text)
	}
	p.next()
	return nil
}

// Binary operator precedence, loosest first (FHIRPath "Operator
// precedence"). is/as take a type specifier and are handled apart.
var binaryPrec = map[string]int{
	"implies": 1,
	"or":      2, "xor": 2,
	"and": 3,
	"in":  4, "contains": 4,
	"=": 5, "~": 5, "!=": 5, "!~": 5,
	"<": 6, ">": 6, "<=": 6, ">=": 6,
	"|":  7,
	"is": 8, "as": 8,
	"+": 9, "-": 9, "&": 9,
	"*": 10, "/": 10, "div": 10, "mod": 10,
}

// binaryOp returns the operator at the current token, if any.
func (p *parser) binaryOp() (string, int, bool) {
	t := p.peek()
	if (t.kind == tokOp || (t.kind == tokIdent && !t.delimited)) && binaryPrec[t.text] > 0 {
		return t.text, binaryPrec[t.text], true
	}
	return "", 0, false
}

// parseExpr is precedence climbing: it parses operators binding tighter
// than minPrec, all left-associative.
func (p *parser) parseExpr(minPrec int) (expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errorf("expression nested too deeply")
	}
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op, prec, ok := p.binaryOp()
		if !ok || prec <= minPrec {
			return left, nil
		}
		p.next()
		if op == "is" || op == "as" {
			typ, err := p.parseTypeSpecifier()
			if err != nil {
				return nil, err
			}
			left = &typeOpExpr{op: op, typ: typ, x: left}
			continue
		}
		right, err := p.parseExpr(prec)
		if err != nil {
			return nil, err
		}
		left = &binaryExpr{op: op, left: left, right: right}
	}
}

// parseTypeSpecifier reads a qualified identifier such as Quantity,
// FHIR.Quantity or System.String.
func (p *parser) parseTypeSpecifier() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", p.errorf("expected a type name")
	}
	name := t.text
	if p.isOp(".") && p.toks[p.i+1].kind == tokIdent {
		p.next()
		name += "." + p.next().text
	}
	return canonicalType(name), nil
}

func (p *parser) parseUnary() (expr, error) {
	if p.isOp("+") || p.isOp("-") {
		op := p.next().text
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, p.errorf("expression nested too deeply")
		}
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op: op, x: x}, nil
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() (expr, error) {
	left, err := p.parseTerm()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			right, err := p.parseInvocation()
			if err != nil {
				return nil, err
			}
			left = &dotExpr{left: left, right: right}
		case p.isOp("["):
			p.next()
			idx, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp("]"); err != nil {
				return nil, err
			}
			left = &indexExpr{left: left, index: idx}
		default:
			return left, nil
		}
	}
}

func (p *parser) parseTerm() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tokNumber:
		p.next()
		typ := "System.Integer"
		if strings.Contains(t.text, ".") {
			typ = "System.Decimal"
		}
		return &literalExpr{vals: []Node{{Value: json.Number(t.text), Type: typ}}}, nil
	case tokString:
		p.next()
		return &literalExpr{vals: []Node{{Value: t.text, Type: "System.String"}}}, nil
	case tokDateTime:
		p.next()
		// The subset takes the date and dateTime forms FHIR itself allows;
		// FHIRPath's zone-less times and @T time literals are outside it.
		if _, err := fhir.ParseDateTime(t.text); err != nil {
			return nil, fmt.Errorf("at %d: unsupported date/time literal @%s", t.pos, t.text)
		}
		typ := "System.Date"
		if strings.Contains(t.text, "T") {
			typ = "System.DateTime"
		}
		return &literalExpr{vals: []Node{{Value: t.text, Type: typ}}}, nil
	case tokExternal:
		p.next()
		if _, ok := constants[t.text]; !ok && t.text != "resource" && t.text != "rootResource" && t.text != "context" {
			return nil, fmt.Errorf("at %d: unknown environment variable %%%s", t.pos, t.text)
		}
		return &externalExpr{name: t.text}, nil
	case tokIdent:
		if !t.delimited && (t.text == "true" || t.text == "false") {
			p.next()
			return &literalExpr{vals: []Node{{Value: t.text == "true", Type: "System.Boolean"}}}, nil
		}
		return p.parseInvocation()
	case tokVariable:
		return p.parseInvocation()
	case tokOp:
		switch t.text {
		case "(":
			p.next()
			x, err := p.parseExpr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return x, nil
		case "{":
			p.next()
			if err := p.expectOp("}"); err != nil {
				return nil, err
			}
			return &literalExpr{}, nil
		}
	case tokEOF:
		return nil, p.errorf("unexpected end of expression")
	}
	return nil, p.errorf("unexpected %q", t.text)
}

// parseInvocation reads a member name, a function call or $this/$index.
func (p *parser) parseInvocation() (expr, error) {
	t := p.next()
	switch t.kind {
	case tokVariable:
		if t.text != "this" && t.text != "index" {
			return nil, fmt.Errorf("at %d: unsupported variable $%s", t.pos, t.text)
		}
		return &variableExpr{name: t.text}, nil
	case tokIdent:
	default:
		return nil, fmt.Errorf("at %d: expected a name, got %q", t.pos, t.text)
	}
	if !p.isOp("(") || t.delimited {
		return &memberExpr{name: t.text}, nil
	}
	p.next()
	fn := functions[t.text]
	if fn == nil {
		return nil, fmt.Errorf("at %d: unknown or unsupported function %s()", t.pos, t.text)
	}
	var args []expr
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		a, err := p.parseExpr(0)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.next()
	if len(args) < fn.minArgs || len(args) > fn.maxArgs {
		return nil, fmt.Errorf("at %d: %s() takes %s, got %d", t.pos, t.text, arity(fn), len(args))
	}
	f := &funcExpr{fn: fn, args: args}
	if fn.typeArg {
		typ, ok := typeName(args[0])
		if !ok {
			return nil, fmt.Errorf("at %d: %s() needs a type name, got %s", t.pos, t.text, args[0])
		}
		f.typ, f.args = typ, nil
	}
	return f, nil
}

func arity(fn *funcDef) string {
	switch {
	case fn.minArgs == fn.maxArgs && fn.maxArgs == 1:
		return "1 argument"
	case fn.minArgs == fn.maxArgs:
		return fmt.Sprintf("%d arguments", fn.maxArgs)
	}
	return fmt.Sprintf("%d to %d arguments", fn.minArgs, fn.maxArgs)
}

// typeName reads a type specifier that was parsed as an expression (the
// argument of is(), as(), ofType()): Quantity or FHIR.Quantity.
func typeName(e expr) (string, bool) {
	switch e := e.(type) {
	case *memberExpr:
		return canonicalType(e.name), true
	case *dotExpr:
		l, lok := e.left.(*memberExpr)
		r, rok := e.right.(*memberExpr)
		if lok && rok {
			return canonicalType(l.name + "." + r.name), true
		}
	}
	return "", false
}

// constants are the environment variables with fixed values (R4
// fhirpath.html#variables).
var constants = map[string]string{
	"ucum":  "http://unitsofmeasure.org",
	"sct":   "http://snomed.info/sct",
	"loinc": "http://loinc.org",
}
