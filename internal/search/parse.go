package search

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhir/spec"
)

// errUnsupported marks a parameter, modifier or value form the server does
// not support: ignored with a warning, or a 400 when the client asked for
// strict handling (R4 search.html#errors).
type errUnsupported struct{ msg string }

func (e *errUnsupported) Error() string { return e.msg }

func unsupportedf(format string, args ...any) error {
	return &errUnsupported{fmt.Sprintf(format, args...)}
}

// errInvalid is a value the parameter cannot have: always a 400.
type errInvalid struct{ msg string }

func (e *errInvalid) Error() string { return e.msg }

func invalidf(format string, args ...any) error { return &errInvalid{fmt.Sprintf(format, args...)} }

// Parameters that shape the answer and are handled by Parse itself or by
// the HTTP layer (_format, _pretty).
var ignoredParams = map[string]bool{"_format": true, "_pretty": true}

// CursorParam is the parameter that carries a store's paging cursor in
// next/previous links.
const CursorParam = "_cursor"

// Parse reads the parameters of a search on resourceType (R4
// search.html): comma-separated values are OR'ed (a backslash escapes a
// comma), repeated parameters AND'ed. Unknown parameters, unsupported
// modifiers and unsupported control values are not errors: they are left
// out of the Query and reported as warning issues, unless strict (Prefer:
// handling=strict), when they make Parse fail with an Invalid error that
// carries those issues. A value a parameter cannot have (a bad date, a
// negative _count) is always an Invalid error.
func (r *Registry) Parse(resourceType string, params url.Values, strict bool) (*Query, []fhir.Issue, error) {
	if !spec.IsResourceType(resourceType) {
		return nil, nil, fhir.Errorf(fhir.Invalid, "%q is not a resource type", resourceType)
	}
	q := &Query{Type: resourceType, Count: -1}
	var issues []fhir.Issue
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		for _, value := range params[key] {
			err := r.parseParam(q, key, value)
			if err == nil {
				continue
			}
			var un *errUnsupported
			if errors.As(err, &un) {
				issues = append(issues, fhir.Issue{Severity: "warning", Code: "not-supported",
					Diagnostics: fmt.Sprintf("parameter %s ignored: %s", key, un.msg), Expression: []string{key}})
				continue
			}
			e := fhir.Errorf(fhir.Invalid, "parameter %s: %v", key, err)
			e.Issues = []fhir.Issue{{Severity: "error", Code: "invalid", Diagnostics: e.Message, Expression: []string{key}}}
			return nil, nil, e
		}
	}
	if strict && len(issues) > 0 {
		for i := range issues {
			issues[i].Severity = "error"
		}
		return nil, nil, &fhir.Error{Code: fhir.Invalid, Message: issues[0].Diagnostics, Issues: issues}
	}
	return q, issues, nil
}

func (r *Registry) parseParam(q *Query, key, value string) error {
	name, mod, _ := strings.Cut(key, ":")
	switch name {
	case "_count":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return invalidf("_count must be a non-negative integer, not %q", value)
		}
		q.Count = n
		return nil
	case CursorParam:
		q.Cursor = value
		return nil
	case "_total":
		switch value {
		case "none":
			q.Total = TotalNone
		case "estimate":
			q.Total = TotalEstimate
		case "accurate":
			q.Total = TotalAccurate
		default:
			return invalidf("_total must be none, estimate or accurate, not %q", value)
		}
		return nil
	case "_summary":
		switch value {
		case "true", "false", "text", "data", "count":
			q.Summary = value
		default:
			return invalidf("_summary must be true, false, text, data or count, not %q", value)
		}
		return nil
	case "_elements":
		for _, e := range strings.Split(value, ",") {
			if e = strings.TrimSpace(e); e != "" {
				q.Elements = append(q.Elements, e)
			}
		}
		return nil
	case "_sort":
		return r.parseSort(q, value)
	case "_include", "_revinclude":
		return r.parseInclude(q, name, mod, value)
	case "_has":
		e, err := r.parseHas(q.Type, key, value)
		if err != nil {
			return err
		}
		q.Where = append(q.Where, e)
		return nil
	}
	if ignoredParams[name] {
		return nil
	}
	e, err := r.condition(q.Type, key, value)
	if err != nil {
		return err
	}
	q.Where = append(q.Where, e)
	return nil
}

// condition is the expression of one occurrence of a search parameter
// (key with its modifier or chain, value with its OR'ed values) on
// resources of typ.
func (r *Registry) condition(typ, key, value string) (Expr, error) {
	if head, tail, ok := strings.Cut(key, "."); ok {
		return r.chain(typ, head, tail, value)
	}
	name, mod, _ := strings.Cut(key, ":")
	p := r.Param(typ, name)
	if p == nil {
		return nil, unsupportedf("%s has no search parameter %q", typ, name)
	}
	e, err := r.paramCondition(p, mod, value)
	if err != nil {
		return nil, err
	}
	if members := r.unions[typ][p.Code]; members != nil {
		// The union's own condition checked the modifier and the value.
		return r.unionCondition(typ, key[len(name):], value, members)
	}
	return e, nil
}

// paramCondition is the condition of parameter p with modifier mod and
// value value, on p's own rows.
func (r *Registry) paramCondition(p *Param, mod, value string) (Expr, error) {
	values := splitEscaped(value, ',')
	if mod == "missing" {
		return missingExpr(p, value)
	}
	switch p.Code {
	case "_id":
		return idExpr(mod, values)
	case "_lastUpdated":
		return r.lastUpdatedExpr(mod, values)
	}
	switch p.Type {
	case "token":
		return tokenExpr(p.Code, mod, p.fold, values)
	case "string":
		return stringExpr(p.Code, mod, values)
	case "date":
		return r.dateExpr(p.Code, mod, values)
	case "reference":
		return r.referenceExpr(p, mod, values)
	case "quantity":
		return quantityExpr(p.Code, mod, values)
	case "number":
		return numberExpr(p.Code, mod, values)
	case "uri":
		return uriExpr(p.Code, mod, values)
	case "composite":
		return r.compositeExpr(p, mod, values)
	}
	return nil, unsupportedf("parameters of type %s are not supported", p.Type)
}

// tableOf is the index table of a parameter type.
func tableOf(typ string) (Table, bool) {
	switch typ {
	case "token":
		return TokenTable, true
	case "string":
		return StringTable, true
	case "date":
		return DateTable, true
	case "reference":
		return ReferenceTable, true
	case "quantity":
		return QuantityTable, true
	case "number":
		return NumberTable, true
	case "uri":
		return URITable, true
	}
	return 0, false
}

// missingExpr is :missing=true|false (R4 search.html#missing): whether the
// resource has no value of the parameter.
func missingExpr(p *Param, value string) (Expr, error) {
	if value != "true" && value != "false" {
		return nil, invalidf(":missing must be true or false, not %q", value)
	}
	var has Expr
	switch {
	case p.Code == "_id" || p.Code == "_lastUpdated":
		has = And{} // every resource has both
	case p.Type == "composite":
		return nil, unsupportedf(":missing is not supported on composite parameters")
	case p.Type == "token":
		// A CodeableConcept with only its text, or a Coding with only a
		// display, has a value but no code row: its text rows count.
		has = Or{Exists{Table: TokenTable, Param: p.Code}, Exists{Table: StringTable, Param: TextRow(p.Code)}}
	default:
		t, _ := tableOf(p.Type)
		has = Exists{Table: t, Param: p.Code}
	}
	if value == "true" {
		return Not{has}, nil
	}
	return has, nil
}

// chain is a chained parameter, head "param[:Type]" and tail the
// parameter of the target (R4 search.html#chaining); one level.
func (r *Registry) chain(typ, head, tail, value string) (Expr, error) {
	name, target, _ := strings.Cut(head, ":")
	p := r.Param(typ, name)
	if p == nil || p.Type != "reference" {
		return nil, unsupportedf("%s has no reference parameter %q to chain", typ, name)
	}
	if strings.Contains(tail, ".") {
		return nil, unsupportedf("chains of more than one level are not supported")
	}
	targets := p.Targets
	if target != "" {
		if !spec.IsResourceType(target) {
			return nil, unsupportedf("%q is not a resource type", target)
		}
		targets = []string{target}
	}
	var or Or
	for _, t := range targets {
		tn, _, _ := strings.Cut(tail, ":")
		if r.Param(t, tn) == nil {
			continue
		}
		e, err := r.condition(t, tail, value)
		if err != nil {
			return nil, err
		}
		or = append(or, Chain{Param: p.Code, TargetType: t, Where: e})
	}
	if len(or) == 0 {
		return nil, unsupportedf("no target of %s has a search parameter %q", name, tail)
	}
	return simplify(or), nil
}

// parseHas is _has:Type:param:tparam=value (R4 search.html#has): resources
// referred to by a resource of Type through param, that matches tparam.
func (r *Registry) parseHas(typ, key, value string) (Expr, error) {
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return nil, invalidf("_has wants _has:Type:reference:parameter, not %q", key)
	}
	src, ref, rest := parts[1], parts[2], parts[3]
	if !spec.IsResourceType(src) {
		return nil, invalidf("%q is not a resource type", src)
	}
	p := r.Param(src, ref)
	if p == nil || p.Type != "reference" {
		return nil, unsupportedf("%s has no reference parameter %q", src, ref)
	}
	var where Expr
	var err error
	if strings.HasPrefix(rest, "_has:") {
		where, err = r.parseHas(src, rest, value)
	} else {
		where, err = r.condition(src, rest, value)
	}
	if err != nil {
		return nil, err
	}
	return Has{Type: src, Param: p.Code, Where: where}, nil
}

// parseSort reads _sort=key,-key (R4 search.html#sort). A value with a key
// it cannot sort by is refused whole, and the caller reports _sort as
// ignored: applying the keys before that one would sort the page in an
// order its self link does not say.
func (r *Registry) parseSort(q *Query, value string) error {
	var keys []SortKey
	for _, k := range strings.Split(value, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		p := r.Param(q.Type, k)
		if p == nil {
			return unsupportedf("%s has no search parameter %q to sort by", q.Type, k)
		}
		key := SortKey{Param: p.Code, Desc: desc}
		if p.Code != "_id" && p.Code != "_lastUpdated" {
			t, ok := tableOf(p.Type)
			if !ok {
				return unsupportedf("sorting by %s parameters is not supported", p.Type)
			}
			key.Table = t
			key.Rows = r.unions[q.Type][p.Code]
		}
		keys = append(keys, key)
	}
	q.Sort = append(q.Sort, keys...)
	return nil
}

// parseInclude reads _include and _revinclude values Source:param[:Target]
// and "*" (R4 search.html#include), with the :iterate (or the older
// :recurse) modifier.
func (r *Registry) parseInclude(q *Query, name, mod, value string) error {
	inc := Include{}
	switch mod {
	case "":
	case "iterate", "recurse":
		inc.Iterate = true
	default:
		return unsupportedf("the modifier :%s is not supported on %s", mod, name)
	}
	if value == "*" {
		inc.Source, inc.Param = "*", "*"
		if name == "_include" {
			inc.Source = q.Type
		}
	} else {
		parts := strings.Split(value, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return invalidf("%s wants Type:parameter[:targetType], not %q", name, value)
		}
		inc.Source, inc.Param = parts[0], parts[1]
		if len(parts) == 3 {
			inc.Target = parts[2]
			if !spec.IsResourceType(inc.Target) {
				return invalidf("%q is not a resource type", inc.Target)
			}
		}
		if !spec.IsResourceType(inc.Source) {
			return invalidf("%q is not a resource type", inc.Source)
		}
		if inc.Param != "*" {
			p := r.Param(inc.Source, inc.Param)
			if p == nil || p.Type != "reference" {
				return unsupportedf("%s has no reference parameter %q", inc.Source, inc.Param)
			}
		}
		if name == "_include" && inc.Source != q.Type && !inc.Iterate {
			return unsupportedf("_include=%s names another type than %s without :iterate", value, q.Type)
		}
	}
	if name == "_include" {
		q.Include = append(q.Include, inc)
	} else {
		q.RevInclude = append(q.RevInclude, inc)
	}
	return nil
}

// ReferenceParams returns the codes of the reference parameters of
// resourceType, sorted: what "*" includes.
func (r *Registry) ReferenceParams(resourceType string) []string {
	var out []string
	for _, p := range r.sorted(resourceType) {
		if p.Type == "reference" {
			out = append(out, p.Code)
		}
	}
	return out
}
