package access

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Scope
		wantStr  string
	}{
		{"v1 read", "patient/Observation.read", Scope{Kind: Clinical, Context: Patient, Type: "Observation", Perms: Read | Search, V1: true}, "patient/Observation.read"},
		{"v1 write", "user/Patient.write", Scope{Kind: Clinical, Context: User, Type: "Patient", Perms: Create | Update | Delete, V1: true}, "user/Patient.write"},
		{"v1 wildcard", "patient/*.*", Scope{Kind: Clinical, Context: Patient, Type: "*", Perms: permAll, V1: true}, "patient/*.*"},
		{"v2 rs", "system/Observation.rs", Scope{Kind: Clinical, Context: System, Type: "Observation", Perms: Read | Search}, "system/Observation.rs"},
		{"v2 cruds", "user/*.cruds", Scope{Kind: Clinical, Context: User, Type: "*", Perms: permAll}, "user/*.cruds"},
		{"v2 single", "patient/Condition.d", Scope{Kind: Clinical, Context: Patient, Type: "Condition", Perms: Delete}, "patient/Condition.d"},
		{"granular", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			Scope{Kind: Clinical, Context: Patient, Type: "Observation", Perms: Read | Search, Params: []Param{{"category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}}},
			"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
		{"granular sorted", "patient/Observation.rs?code=a|1&category=b|2",
			Scope{Kind: Clinical, Context: Patient, Type: "Observation", Perms: Read | Search, Params: []Param{{"category", "b|2"}, {"code", "a|1"}}},
			"patient/Observation.rs?category=b|2&code=a|1"},
		{"launch", "launch", Scope{Kind: Other, Word: "launch"}, "launch"},
		{"launch patient", "launch/patient", Scope{Kind: Other, Word: "launch/patient"}, "launch/patient"},
		{"openid", "openid", Scope{Kind: Other, Word: "openid"}, "openid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.String() != tt.wantStr {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantStr)
			}
			if got.Kind != tt.want.Kind || got.Context != tt.want.Context || got.Type != tt.want.Type || got.Perms != tt.want.Perms || got.V1 != tt.want.V1 || got.Word != tt.want.Word || len(got.Params) != len(tt.want.Params) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			for i := range got.Params {
				if got.Params[i] != tt.want.Params[i] {
					t.Errorf("Params[%d] = %v, want %v", i, got.Params[i], tt.want.Params[i])
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":                    "",
		"no permissions":           "patient/Observation",
		"empty permissions":        "patient/Observation.",
		"permissions out of order": "patient/Observation.sr",
		"repeated permission":      "patient/Observation.rr",
		"unknown permission":       "patient/Observation.x",
		"bad type":                 "patient/observation.rs",
		"type with digit":          "patient/Obs1.rs",
		"v1 with query":            "patient/Observation.read?category=a",
		"empty query":              "patient/Observation.rs?",
		"query without value":      "patient/Observation.rs?category",
		"quote":                    "pat\"ient",
		"space inside":             "a b",
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := Parse(in); err == nil {
				t.Errorf("Parse(%q) = %+v, want an error", in, s)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	lab := "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	tests := []struct {
		name string
		s, t string
		want bool
	}{
		{"wildcard covers type", "patient/*.cruds", "patient/Observation.rs", true},
		{"v1 read equals v2 rs", "patient/Observation.read", "patient/Observation.rs", true},
		{"v2 rs covers v1 read", "patient/Observation.rs", "patient/Observation.read", true},
		{"read does not cover write", "patient/Observation.read", "patient/Observation.c", false},
		{"context differs", "user/*.cruds", "patient/Observation.r", false},
		{"type differs", "patient/Condition.rs", "patient/Observation.rs", false},
		{"resource covers granular", "patient/Observation.rs", lab, true},
		{"granular does not cover resource", lab, "patient/Observation.rs", false},
		{"granular covers itself", lab, lab, true},
		{"word covers itself", "launch", "launch", true},
		{"word does not cover other word", "launch", "launch/patient", false},
		{"system wildcard covers granular", "system/*.rs", lab[len("patient"):], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			u, err := Parse(tt.t)
			if err != nil {
				// the last case builds a scope without a context on purpose
				u = Scope{Kind: Other, Word: tt.t}
			}
			if got := s.Covers(u); got != tt.want {
				t.Errorf("%q.Covers(%q) = %v, want %v", tt.s, tt.t, got, tt.want)
			}
		})
	}
}

func TestSetIntersect(t *testing.T) {
	tests := []struct {
		name               string
		requested, allowed string
		want               string
	}{
		{"same", "patient/Observation.read launch openid", "patient/*.read launch openid fhirUser", "patient/Observation.read launch openid"},
		{"wildcard requested meets specific allowed", "patient/*.rs", "patient/Observation.rs patient/Condition.r", "patient/Observation.rs patient/Condition.r"},
		{"permissions narrowed, v1 without spelling becomes v2", "patient/Observation.read", "patient/Observation.r", "patient/Observation.r"},
		{"v1 write narrowed to v1 read is empty", "patient/Observation.write", "patient/*.read", ""},
		{"v2 syntax kept", "patient/Observation.rs", "patient/*.*", "patient/Observation.rs"},
		{"granular kept", "patient/Observation.rs?category=a|b", "patient/*.cruds", "patient/Observation.rs?category=a|b"},
		{"allowed granular restricts", "patient/Observation.rs", "patient/Observation.rs?category=a|b", "patient/Observation.rs?category=a|b"},
		{"unknown word dropped", "launch something", "launch", "launch"},
		{"context never widens", "user/Observation.rs", "patient/*.cruds", ""},
		{"covered results reduced", "patient/Observation.rs patient/Observation.rs?category=a|b", "patient/*.rs", "patient/Observation.rs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustParseSet(tt.requested).Intersect(MustParseSet(tt.allowed)).String()
			if got != tt.want {
				t.Errorf("Intersect = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSetHelpers(t *testing.T) {
	set := MustParseSet("openid openid patient/*.rs launch/patient")
	if got, want := set.String(), "openid patient/*.rs launch/patient"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !set.Has("launch/patient") || set.Has("launch") {
		t.Errorf("Has: got wrong membership for %q", set)
	}
	if !set.CoversAll(MustParseSet("patient/Observation.r openid")) {
		t.Errorf("CoversAll: want true")
	}
	if set.CoversAll(MustParseSet("patient/Observation.c")) {
		t.Errorf("CoversAll of a create scope: want false")
	}
	if _, err := ParseSet("patient/Observation.x"); err == nil {
		t.Errorf("ParseSet of a bad scope: want an error")
	}
}

// FuzzParse checks that whatever parses writes back to a string that parses
// to a scope covering, and covered by, the first one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"patient/Observation.read", "user/*.cruds", "system/Patient.rs?category=a|b&code=c",
		"launch/patient", "patient/*.*", "patient/Observation.rs?category=a%26b", "openid"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		out := s.String()
		s2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q does not parse: %v", in, out, err)
		}
		if !s.Covers(s2) || !s2.Covers(s) {
			t.Fatalf("round trip of %q through %q changed meaning", in, out)
		}
		if s2.String() != out {
			t.Fatalf("String not stable: %q then %q", out, s2.String())
		}
		if i, ok := Intersect(s, s); !ok || !i.Covers(s) || !s.Covers(i) {
			t.Fatalf("Intersect(%q, itself) = %v, %v", in, i, ok)
		}
	})
}
