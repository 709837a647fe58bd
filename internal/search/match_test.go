package search

import (
	"net/url"
	"testing"
)

func TestMatch(t *testing.T) {
	r := testRegistry(t)
	body := []byte(`{"resourceType":"Observation","id":"o1","status":"final",
"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},
"subject":{"reference":"Patient/85"},"effectiveDateTime":"2020-05-01",
"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`)
	ix, err := r.Index("Observation", body)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  bool
	}{
		{"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", true},
		{"category=vital-signs", false},
		{"category=laboratory,vital-signs", true},
		{"category:not=laboratory", false},
		{"code=http://loinc.org|2345-7&status=final", true},
		{"code=2345-7&status=amended", false},
		{"patient=85", true},
		{"subject=Patient/86", false},
		{"date=ge2020-01-01", true},
		{"date=lt2020-01-01", false},
		{"_id=o1", true},
		{"_id=o2", false},
		{"component-code-value-quantity=8480-6$120", true},
		{"component-code-value-quantity=8480-6$121", false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			vals, _ := url.ParseQuery(tt.query)
			q, _, err := r.Parse("Observation", vals, true)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Match(ix, "o1", 0, q.Where)
			if err != nil || got != tt.want {
				t.Errorf("Match(%s) = %v, %v; want %v", tt.query, got, err, tt.want)
			}
		})
	}
	t.Run("compartment", func(t *testing.T) {
		for p, want := range map[string]bool{"85": true, "86": false} {
			if got, _ := Match(ix, "o1", 0, Compartment{Patient: p}); got != want {
				t.Errorf("Match(Compartment %s) = %v, want %v", p, got, want)
			}
		}
	})
	t.Run("chain is an error", func(t *testing.T) {
		if _, err := Match(ix, "o1", 0, Chain{Param: "subject", TargetType: "Patient", Where: And{}}); err == nil {
			t.Error("Match of a Chain succeeded")
		}
	})
}
