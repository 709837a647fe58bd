package search

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestUnionTerms(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{"Observation.code", []string{"Observation.code"}},
		{"Observation.code | Observation.component.code", []string{"Observation.code", "Observation.component.code"}},
		{"Condition.onset.as(dateTime)|Condition.onset.as(Period)", []string{"Condition.onset.as(dateTime)", "Condition.onset.as(Period)"}},
		{"(Observation.value as Quantity) | (Observation.value as SampledData)", []string{"(Observation.value as Quantity)", "(Observation.value as SampledData)"}},
		{"(a | b)", []string{"(a | b)"}},
		{"Patient.telecom.where(system='a|b') | Person.telecom", []string{"Patient.telecom.where(system='a|b')", "Person.telecom"}},
		{`Patient.name.where(text='it\'s | x')`, []string{`Patient.name.where(text='it\'s | x')`}},
		{"a | ", nil},
	} {
		if got := unionTerms(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("unionTerms(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// membersOf is unionMembers of u among params, as findUnions calls it.
func membersOf(params map[string]*Param, u *Param) []string {
	terms := map[*Param][]string{}
	for _, p := range params {
		terms[p] = unionTerms(p.Expression)
	}
	return unionMembers(params, slices.Sorted(maps.Keys(params)), terms, u)
}

func TestUnionMembers(t *testing.T) {
	tok := func(code, expr string) *Param { return &Param{Code: code, Type: "token", Expression: expr} }
	params := func(ps ...*Param) map[string]*Param {
		m := map[string]*Param{}
		for _, p := range ps {
			m[p.Code] = p
		}
		return m
	}
	a, b, c := tok("a", "X.a"), tok("b", "X.b"), tok("c", "X.c")
	ab := tok("ab", "X.a | X.b")
	for _, tc := range []struct {
		name   string
		params map[string]*Param
		u      *Param
		want   []string
	}{
		{"two members", params(a, b, ab), ab, []string{"a", "b"}},
		{"a term no other parameter has", params(a, b, ab, tok("abc", "X.a | X.b | X.z")), tok("abc", "X.a | X.b | X.z"), nil},
		{"three members", params(a, b, c, tok("abc", "X.c|X.b|X.a")), tok("abc", "X.c|X.b|X.a"), []string{"a", "b", "c"}},
		{"another parameter with the same terms besides", params(a, b, tok("aa", "X.a | X.b"), ab), ab, []string{"a", "b"}},
		{"another parameter with the same terms, met first, is no partition", params(a, b, tok("0", "X.a | X.b"), ab), ab, nil},
		{"another type of parameter", params(a, &Param{Code: "b", Type: "string", Expression: "X.b"}, ab), ab, nil},
		{"references are never unions", params(&Param{Code: "a", Type: "reference", Expression: "X.a"}, &Param{Code: "b", Type: "reference", Expression: "X.b"}), &Param{Code: "ab", Type: "reference", Expression: "X.a | X.b"}, nil},
		{"a single term", params(a, b), a, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.params[tc.u.Code] = tc.u
			if got := membersOf(tc.params, tc.u); !slices.Equal(got, tc.want) {
				t.Errorf("unionMembers(%s) = %v, want %v", tc.u.Code, got, tc.want)
			}
		})
	}
	// A composite's members have its components.
	comp := func(code, base, value string) *Param {
		return &Param{Code: code, Type: "composite", Expression: base, Components: []Component{{Type: "token", Expression: "code"}, {Type: "quantity", Expression: value}}}
	}
	u := comp("u", "O | O.component", "value.as(Quantity)")
	ps := params(comp("q", "O", "value.as(Quantity)"), comp("cq", "O.component", "value.as(Quantity)"), comp("cc", "O.component", "value.as(CodeableConcept)"), u)
	if got := membersOf(ps, u); !slices.Equal(got, []string{"cq", "q"}) {
		t.Errorf("composite union members = %v, want [cq q]", got)
	}
}

// TestRegistryUnions pins the unions the R4 and US Core definitions make
// and checks that Index writes no rows for them, while a condition on one
// still reaches every value its own expression has.
func TestRegistryUnions(t *testing.T) {
	r := testRegistry(t)
	got := map[string]string{}
	for typ, us := range r.unions {
		for code, members := range us {
			got[typ+"."+code] = strings.Join(members, ",")
		}
	}
	want := map[string]string{
		"Observation.combo-code":                "code,component-code",
		"Observation.combo-code-value-concept":  "code-value-concept,component-code-value-concept",
		"Observation.combo-code-value-quantity": "code-value-quantity,component-code-value-quantity",
		"Observation.combo-data-absent-reason":  "component-data-absent-reason,data-absent-reason",
		"Observation.combo-value-concept":       "component-value-concept,value-concept",
		"Observation.combo-value-quantity":      "component-value-quantity,value-quantity",
	}
	if !maps.Equal(got, want) {
		t.Errorf("unions = %v, want %v", got, want)
	}
	ix, err := r.Index("Observation", []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range ix.Tokens {
		if strings.HasPrefix(row.Param, "combo-") {
			t.Errorf("a token row of the union %s", row.Param)
		}
	}
	for _, row := range ix.Quantities {
		if strings.HasPrefix(row.Param, "combo-") {
			t.Errorf("a quantity row of the union %s", row.Param)
		}
	}
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"combo-code=8480-6", true},
		{"combo-code=85354-9", true},
		{"combo-code-value-quantity=8480-6$120", true},
		{"combo-value-quantity=120", true},
		{"combo-code:not=8480-6", false},
		{"combo-code:not=1234-5", true},
	} {
		vals, _ := url.ParseQuery(tc.query)
		q, _, err := r.Parse("Observation", vals, true)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Match(ix, "x", 0, q.Where); err != nil || got != tc.want {
			t.Errorf("Match(%s) = %v, %v; want %v", tc.query, got, err, tc.want)
		}
	}
	if _, _, err := r.Parse("Observation", map[string][]string{"combo-code-value-quantity": {"8480-6"}}, true); err == nil || !strings.Contains(err.Error(), "combo-code-value-quantity wants 2 values") {
		t.Errorf("a bad value of a composite union: %v, want an error that names it", err)
	}
}

// TestNestedUnions: a union one of whose members is itself a union keeps
// rows of its own, whatever the order the maps give. "1" is a|b; "0",
// a|b|c, is "1" and c; "00", a|b|c|d, is "0" and d: both keep rows, and
// deciding while deleting would keep "00" whenever "0" went first.
func TestNestedUnions(t *testing.T) {
	tok := func(code, expr string) *Param { return &Param{Code: code, Type: "token", Expression: expr} }
	for range 50 {
		r := &Registry{byType: map[string]map[string]*Param{"X": {
			"a": tok("a", "X.a"), "b": tok("b", "X.b"), "c": tok("c", "X.c"), "d": tok("d", "X.d"),
			"1": tok("1", "X.a | X.b"), "0": tok("0", "X.a | X.b | X.c"), "00": tok("00", "X.a | X.b | X.c | X.d"),
		}}}
		r.findUnions()
		want := map[string]map[string][]string{"X": {"1": {"a", "b"}}}
		if !maps.EqualFunc(r.unions, want, func(x, y map[string][]string) bool {
			return maps.EqualFunc(x, y, slices.Equal)
		}) {
			t.Fatalf("unions = %v, want %v", r.unions, want)
		}
	}
}
