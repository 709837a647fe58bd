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

func TestCompositeComponentsShareRows(t *testing.T) {
	r := testRegistry(t)
	row := func(code string, i int) string { return r.Param("Observation", code).Components[i].Row }
	if a, b := row("code-value-quantity", 0), row("code-value-concept", 0); a != b {
		t.Errorf("the code components of code-value-quantity and code-value-concept write %s and %s", a, b)
	}
	if a, b := row("code-value-quantity", 0), row("code-value-quantity", 1); a == b {
		t.Errorf("both components of code-value-quantity write %s", a)
	}
	// Same component expression, another composite expression: other groups.
	if a, b := row("code-value-quantity", 0), row("component-code-value-quantity", 0); a == b {
		t.Errorf("code-value-quantity and component-code-value-quantity share %s", a)
	}
	body := []byte(`{"resourceType":"Observation","id":"o1","status":"final",
"code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}],"text":"Body weight"},
"valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"kg"}}`)
	ix, err := r.Index("Observation", body)
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for _, tok := range ix.Tokens {
		if tok.Param == row("code-value-quantity", 0) {
			shared++
		}
	}
	if shared != 1 {
		t.Errorf("%d rows under %s, want the one coding once", shared, row("code-value-quantity", 0))
	}
	for _, s := range ix.Strings {
		if s.Group != 0 {
			t.Errorf("composite component text row %+v", s)
		}
	}
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"code-value-quantity=http://loinc.org|29463-7$80||kg", true},
		{"code-value-quantity=http://loinc.org|29463-7$81", false},
		{"code-value-concept=http://loinc.org|29463-7$x", false},
		{"combo-code-value-quantity=29463-7$ge80", true},
		{"code:text=body", true},
	} {
		vals, _ := url.ParseQuery(tt.query)
		q, _, err := r.Parse("Observation", vals, true)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Match(ix, "o1", 0, q.Where); err != nil || got != tt.want {
			t.Errorf("Match(%s) = %v, %v; want %v", tt.query, got, err, tt.want)
		}
	}
}
