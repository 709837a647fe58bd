package access

import (
	"slices"
	"testing"
)

func TestPolicy(t *testing.T) {
	lab := Param{"category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}
	tests := []struct {
		name  string
		grant Grant
		typ   string
		perm  Perm
		// allows is Allows(typ, perm); unrestricted and rules are Rules'.
		allows       bool
		unrestricted bool
		rules        []Rule
	}{
		{"v1 read allows read", Grant{Scopes: MustParseSet("system/Observation.read")}, "Observation", Read, true, true, nil},
		{"v1 read allows search", Grant{Scopes: MustParseSet("system/Observation.read")}, "Observation", Search, true, true, nil},
		{"v1 read refuses create", Grant{Scopes: MustParseSet("system/Observation.read")}, "Observation", Create, false, false, nil},
		{"v1 write allows delete", Grant{Scopes: MustParseSet("system/Observation.write")}, "Observation", Delete, true, true, nil},
		{"v1 write refuses read", Grant{Scopes: MustParseSet("system/Observation.write")}, "Observation", Read, false, false, nil},
		{"v2 s alone refuses read", Grant{Scopes: MustParseSet("system/Observation.s")}, "Observation", Read, false, false, nil},
		{"wildcard type", Grant{Scopes: MustParseSet("system/*.cruds")}, "Condition", Update, true, true, nil},
		{"other type refused", Grant{Scopes: MustParseSet("system/Observation.rs")}, "Patient", Read, false, false, nil},
		{"launch scopes grant nothing", Grant{Scopes: MustParseSet("openid launch/patient")}, "Patient", Read, false, false, nil},
		{"patient scope reaches the launch patient", Grant{Scopes: MustParseSet("patient/*.rs"), Patient: "85"}, "Observation", Read, true, false,
			[]Rule{{Perms: Read | Search, Patients: []string{"85"}}}},
		{"patient scope without a launch patient reaches no one", Grant{Scopes: MustParseSet("patient/*.rs")}, "Observation", Read, true, false,
			[]Rule{{Perms: Read | Search}}},
		{"user scope reaches the user's patients", Grant{Scopes: MustParseSet("user/Observation.rs"), Patient: "1", UserPatients: []string{"3", "2", "3"}}, "Observation", Search, true, false,
			[]Rule{{Perms: Read | Search, Patients: []string{"2", "3"}}}},
		{"granular scope", Grant{Scopes: MustParseSet("patient/Observation.rs?category=" + lab.Value), Patient: "85"}, "Observation", Search, true, false,
			[]Rule{{Perms: Read | Search, Patients: []string{"85"}, Params: []Param{lab}}}},
		{"granular system scope is restricted", Grant{Scopes: MustParseSet("system/Observation.rs?category=" + lab.Value)}, "Observation", Search, true, false,
			[]Rule{{Perms: Read | Search, AllPatients: true, Params: []Param{lab}}}},
		{"an unrestricted scope wins over a granular one", Grant{Scopes: MustParseSet("system/Observation.rs?category=" + lab.Value + " system/*.rs")}, "Observation", Search, true, true, nil},
		{"rules of both the type and the wildcard", Grant{Scopes: MustParseSet("patient/Observation.r user/*.rs"), Patient: "85", UserPatients: []string{"9"}}, "Observation", Read, true, false,
			[]Rule{{Perms: Read, Patients: []string{"85"}}, {Perms: Read | Search, Patients: []string{"9"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(tt.grant)
			if got := p.Allows(tt.typ, tt.perm); got != tt.allows {
				t.Errorf("Allows(%s, %s) = %v, want %v", tt.typ, tt.perm, got, tt.allows)
			}
			rules, unrestricted := p.Rules(tt.typ, tt.perm)
			if unrestricted != tt.unrestricted {
				t.Errorf("Rules unrestricted = %v, want %v", unrestricted, tt.unrestricted)
			}
			if !slices.EqualFunc(rules, tt.rules, func(a, b Rule) bool {
				return a.Perms == b.Perms && a.AllPatients == b.AllPatients && slices.Equal(a.Patients, b.Patients) && slices.Equal(a.Params, b.Params)
			}) {
				t.Errorf("Rules = %+v, want %+v", rules, tt.rules)
			}
		})
	}
}

func TestEverything(t *testing.T) {
	if _, unrestricted := Everything().Rules("Observation", Delete); !unrestricted || !Everything().Allows("Anything", Delete) {
		t.Error("Everything() does not allow everything")
	}
}
