package access

import (
	"fmt"
	"strings"
)

// Set is a list of scopes without duplicates, in the order first seen.
type Set []Scope

// ParseSet parses a space-separated scope string (RFC 6749 §3.3). Repeated
// scopes are kept once.
func ParseSet(s string) (Set, error) {
	var out Set
	for w := range strings.FieldsSeq(s) {
		sc, err := Parse(w)
		if err != nil {
			return nil, err
		}
		out = out.add(sc)
	}
	return out, nil
}

// MustParseSet is ParseSet for scope strings written in the program.
func MustParseSet(s string) Set {
	set, err := ParseSet(s)
	if err != nil {
		panic(fmt.Sprintf("access.MustParseSet(%q): %v", s, err))
	}
	return set
}

func (set Set) add(sc Scope) Set {
	str := sc.String()
	for _, x := range set {
		if x.String() == str {
			return set
		}
	}
	return append(set, sc)
}

// String writes the set as a space-separated scope string.
func (set Set) String() string {
	words := make([]string, len(set))
	for i, s := range set {
		words[i] = s.String()
	}
	return strings.Join(words, " ")
}

// Has reports whether the set holds the Other scope word (openid,
// offline_access, launch/patient, ...).
func (set Set) Has(word string) bool {
	for _, s := range set {
		if s.Kind == Other && s.Word == word {
			return true
		}
	}
	return false
}

// Covers reports whether some scope of the set covers t.
func (set Set) Covers(t Scope) bool {
	for _, s := range set {
		if s.Covers(t) {
			return true
		}
	}
	return false
}

// CoversAll reports whether every scope of other is covered by the set.
func (set Set) CoversAll(other Set) bool {
	for _, t := range other {
		if !set.Covers(t) {
			return false
		}
	}
	return true
}

// Intersect returns what both requested and allowed allow, written as
// requested was. A requested wildcard meets each allowed scope it overlaps
// (patient/*.rs ∩ {patient/Observation.rs, patient/Condition.r} gives both),
// and results already covered by another result are dropped.
func (requested Set) Intersect(allowed Set) Set {
	var out Set
	for _, r := range requested {
		for _, a := range allowed {
			if i, ok := Intersect(r, a); ok {
				out = out.add(i)
			}
		}
	}
	return out.reduce()
}

// reduce drops every scope another scope of the set covers.
func (set Set) reduce() Set {
	var out Set
	for i, s := range set {
		covered := false
		for j, o := range set {
			if i != j && o.Covers(s) && !(s.Covers(o) && j > i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

// Filter returns the scopes for which keep is true.
func (set Set) Filter(keep func(Scope) bool) Set {
	var out Set
	for _, s := range set {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
