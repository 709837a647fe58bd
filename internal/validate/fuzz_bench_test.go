package validate

import (
	"errors"
	"reflect"
	"testing"

	"smartfhir/internal/fhir"
)

func FuzzResource(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","id":"x","name":[{"given":["a",null],"_given":[null,{"id":"g"}]}],"gender":"male","birthDate":"2000-02-29"}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.5,"comparator":"<"}}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","contained":[{"resourceType":"Basic","id":"b","code":{"text":"x"}}]}}]}`,
		`{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string"}]}]}`,
		`{"resourceType":"Patient","_active":{"extension":[{"url":"u","valueBoolean":true}]}}`,
		`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Patient","active":"yes","foo":[],"name":{}}`,
		`[1,2,{"a":"\ud800"}]`,
		`{"resourceType":"Patient"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err1 := Resource(raw)
		err2 := Resource(raw)
		if !reflect.DeepEqual(err1, err2) {
			t.Fatalf("not deterministic: %v vs %v", err1, err2)
		}
		if err1 == nil {
			return
		}
		var fe *fhir.Error
		if !errors.As(err1, &fe) || fe.Code != fhir.Invalid || len(fe.Issues) == 0 || len(fe.Issues) > MaxIssues {
			t.Fatalf("got %#v, want a fhir.Invalid error with 1..%d issues", err1, MaxIssues)
		}
	})
}

func benchExample(b *testing.B, name string) {
	var raw []byte
	for _, ex := range examples(b) {
		if ex.name == name {
			raw = ex.raw
		}
	}
	if raw == nil {
		b.Fatalf("example %s not found", name)
	}
	if err := Resource(raw); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Resource(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	b.Run("Patient", func(b *testing.B) { benchExample(b, "Patient-example.json") })
	b.Run("Observation", func(b *testing.B) { benchExample(b, "Observation-example.json") })
	b.Run("Bundle", func(b *testing.B) { benchExample(b, "Bundle-bundle-example.json") })
}

// TestConcurrentUse validates the same resources from several goroutines;
// run under -race it checks that validation shares no mutable state.
func TestConcurrentUse(t *testing.T) {
	exs := examples(t)[:200]
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, ex := range exs {
				if _, known := invalidExamples[ex.name]; !known {
					if err := Resource(ex.raw); err != nil {
						t.Errorf("%s: %v", ex.name, err)
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
