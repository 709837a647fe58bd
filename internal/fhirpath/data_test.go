package fhirpath

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"smartfhir/internal/testenv"
)

// Tests against the official FHIR packages in ../shared/data (see its
// README). They skip when the data is absent, as on a fresh clone.

// readTgz returns the files of an npm-style FHIR package whose names keep
// accepts, by name.
func readTgz(t testing.TB, path string, keep func(name string) bool) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("reference package not found: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg || !keep(h.Name) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		out[h.Name] = b
	}
	return out
}

func decodeJSON(t testing.TB, name string, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

type searchParam struct {
	ID, Code, Type, Expression string
	Base                       []string
	Component                  []struct{ Expression string }
}

func isSearchParamFile(name string) bool {
	return strings.HasPrefix(name, "package/SearchParameter-") && strings.HasSuffix(name, ".json")
}

func loadSearchParams(t testing.TB, path string) []searchParam {
	t.Helper()
	files := readTgz(t, path, isSearchParamFile)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []searchParam
	for _, n := range names {
		var sp searchParam
		if err := json.Unmarshal(files[n], &sp); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out = append(out, sp)
	}
	return out
}

var (
	coreOnce   sync.Once
	coreParams []searchParam
)

func coreSearchParams(t testing.TB) []searchParam {
	t.Helper()
	path := filepath.Join(testenv.SharedData(t), "fhir", "hl7.fhir.r4.core-4.0.1.tgz")
	coreOnce.Do(func() { coreParams = loadSearchParams(t, path) })
	if len(coreParams) == 0 {
		t.Fatalf("no SearchParameters in %s", path)
	}
	return coreParams
}

// uncompilable lists the expressions of the official SearchParameters
// that this subset deliberately does not compile, with the reason. It is
// empty: every core and US Core 6.1.0 expression compiles.
var uncompilable = map[string]string{}

func TestCompileEverySearchParameter(t *testing.T) {
	data := testenv.SharedData(t)
	for _, pkg := range []string{
		filepath.Join("fhir", "hl7.fhir.r4.core-4.0.1.tgz"),
		filepath.Join("us-core", "hl7.fhir.us.core-6.1.0.tgz"),
	} {
		t.Run(filepath.Base(pkg), func(t *testing.T) {
			params := loadSearchParams(t, filepath.Join(data, pkg))
			n := 0
			for _, sp := range params {
				exprs := []string{sp.Expression}
				for _, c := range sp.Component {
					exprs = append(exprs, c.Expression)
				}
				for _, src := range exprs {
					if src == "" {
						continue
					}
					n++
					_, err := Compile(src)
					reason, listed := uncompilable[src]
					switch {
					case err != nil && !listed:
						t.Errorf("SearchParameter %s: %v", sp.ID, err)
					case err == nil && listed:
						t.Errorf("SearchParameter %s compiles but is listed as uncompilable (%s)", sp.ID, reason)
					}
				}
			}
			if n < 50 {
				t.Errorf("compiled only %d expressions: is the package complete?", n)
			}
			t.Logf("%d expressions of %d SearchParameters", n, len(params))
		})
	}
}

// example is one official example resource.
type example struct {
	name     string
	resource map[string]any
}

var (
	examplesOnce sync.Once
	examples     []example
)

// definitionPrefixes are the conformance resources that the examples
// package repeats from the core package; they are left out to keep the
// test fast (they are examples of no clinical search).
var definitionPrefixes = []string{
	"package/StructureDefinition-", "package/ValueSet-", "package/CodeSystem-",
	"package/SearchParameter-", "package/ConceptMap-", "package/OperationDefinition-",
	"package/CompartmentDefinition-", "package/NamingSystem-",
}

func officialExamples(t testing.TB) []example {
	t.Helper()
	path := filepath.Join(testenv.SharedData(t), "fhir", "hl7.fhir.r4.examples-4.0.1.tgz")
	examplesOnce.Do(func() {
		files := readTgz(t, path, func(name string) bool {
			if !strings.HasSuffix(name, ".json") || name == "package/package.json" || strings.Count(name, "/") != 1 {
				return false
			}
			for _, p := range definitionPrefixes {
				if strings.HasPrefix(name, p) {
					return false
				}
			}
			return true
		})
		for name, b := range files {
			m := decodeJSON(t, name, b)
			if _, ok := m["resourceType"].(string); ok {
				examples = append(examples, example{name: name, resource: m})
			}
		}
		slices.SortFunc(examples, func(a, b example) int { return strings.Compare(a.name, b.name) })
	})
	if len(examples) < 500 {
		t.Fatalf("only %d examples in %s", len(examples), path)
	}
	return examples
}

// applies reports whether a SearchParameter with these bases applies to a
// resource of type typ.
func applies(base []string, typ string) bool {
	for _, b := range base {
		if b == typ || b == "Resource" || (b == "DomainResource" && typ != "Bundle" && typ != "Binary" && typ != "Parameters") {
			return true
		}
	}
	return false
}

// indexable are the value types each search parameter type can index
// (R4 §3.1.1.5 "Search parameter types"). A result of another type means
// the evaluator reported a wrong type.
var indexable = map[string][]string{
	"number":    {"integer", "decimal", "positiveInt", "unsignedInt"},
	"date":      {"date", "dateTime", "instant", "Period", "Timing"},
	"string":    {"string", "markdown", "HumanName", "Address", "uri", "url", "canonical", "code", "id"},
	"token":     {"Coding", "CodeableConcept", "Identifier", "ContactPoint", "code", "boolean", "uri", "url", "canonical", "string", "id", "System.Boolean", "oid", "uuid"},
	"reference": {"Reference", "canonical", "uri", "url"},
	"quantity":  {"Quantity", "SampledData", "Range", "Age", "Duration", "Money", "Distance", "Count"},
	"uri":       {"uri", "url", "canonical", "oid", "uuid"},
}

// definitionQuirks are the value types that official SearchParameter
// expressions yield although their parameter type cannot index them: the
// expressions take a whole choice element or extension. The evaluator
// reports these types truthfully; the indexer skips such values.
var definitionQuirks = map[string][]string{
	"CarePlan-activity-date":                          {"string"},     // CarePlan.activity.detail.scheduled includes scheduledString
	"clinical-date":                                   {"string"},     // Immunization.occurrence includes occurrenceString
	"Consent-source-reference":                        {"Attachment"}, // Consent.source includes sourceAttachment
	"observation-genetic-Observation-gene-identifier": {"Extension"},  // the expression stops at the extension
}

func TestSearchParametersOnExamples(t *testing.T) {
	t.Run("R4 core on the R4 examples", func(t *testing.T) {
		evaluated, values := checkOnExamples(t, coreSearchParams(t), officialExamples(t))
		if evaluated < 10000 || values < 5000 {
			t.Errorf("only %d evaluations giving %d values: expected far more", evaluated, values)
		}
	})
	t.Run("US Core 6.1.0 on its examples", func(t *testing.T) {
		pkg := filepath.Join(testenv.SharedData(t), "us-core", "hl7.fhir.us.core-6.1.0.tgz")
		files := readTgz(t, pkg, func(n string) bool {
			return strings.HasPrefix(n, "package/example/") && strings.HasSuffix(n, ".json")
		})
		var exs []example
		for name, b := range files {
			exs = append(exs, example{name: name, resource: decodeJSON(t, name, b)})
		}
		evaluated, values := checkOnExamples(t, loadSearchParams(t, pkg), exs)
		if evaluated < 500 || values < 300 {
			t.Errorf("only %d evaluations giving %d values: expected far more", evaluated, values)
		}
	})
}

// checkOnExamples evaluates every expression on every example of its base
// types and checks that it succeeds and yields values of types its
// parameter type can index.
func checkOnExamples(t *testing.T, params []searchParam, examples []example) (evaluated, values int) {
	compiled := make([]*Expr, len(params))
	components := make([][]*Expr, len(params))
	for i, sp := range params {
		if sp.Expression == "" {
			continue
		}
		compiled[i] = MustCompile(sp.Expression)
		for _, c := range sp.Component {
			components[i] = append(components[i], MustCompile(c.Expression))
		}
	}
	env := Env{Types: SpecTypes}
	wrongType := 0
	for _, ex := range examples {
		typ, _ := ex.resource["resourceType"].(string)
		for i, sp := range params {
			if compiled[i] == nil || !applies(sp.Base, typ) {
				continue
			}
			evaluated++
			got, err := compiled[i].Evaluate(ex.resource, env)
			if err != nil {
				t.Errorf("%s on %s: %v", sp.ID, ex.name, err)
				continue
			}
			values += len(got)
			for _, n := range got {
				if n.Type == "" {
					t.Errorf("%s on %s: value %v has no type", sp.ID, ex.name, n.Value)
				}
				if allowed, ok := indexable[sp.Type]; ok && !slices.Contains(allowed, n.Type) &&
					!slices.Contains(definitionQuirks[sp.ID], n.Type) && !(sp.Type == "reference" && spIsResource(n)) {
					if wrongType++; wrongType <= 20 {
						t.Errorf("%s (%s) on %s: value of type %s", sp.ID, sp.Type, ex.name, n.Type)
					}
				}
				// Composite components are relative to each value.
				for _, c := range components[i] {
					if _, err := c.EvaluateAt(ex.resource, n, env); err != nil {
						t.Errorf("%s component %s on %s: %v", sp.ID, c, ex.name, err)
					}
				}
			}
		}
	}
	t.Logf("%d evaluations, %d values", evaluated, values)
	return evaluated, values
}

// spIsResource: Bundle.composition and Bundle.message are reference
// parameters whose expression yields the resource itself.
func spIsResource(n Node) bool {
	m, ok := n.Value.(map[string]any)
	return ok && m["resourceType"] == n.Type
}

func exampleNamed(t *testing.T, name string) map[string]any {
	t.Helper()
	for _, ex := range officialExamples(t) {
		if ex.name == "package/"+name+".json" {
			return ex.resource
		}
	}
	t.Fatalf("no example %s", name)
	return nil
}

func searchParamExpr(t *testing.T, params []searchParam, id string) string {
	t.Helper()
	for _, sp := range params {
		if sp.ID == id {
			return sp.Expression
		}
	}
	t.Fatalf("no SearchParameter %s", id)
	return ""
}

// summary renders values for comparison: a primitive as itself, a
// Reference as its reference, a CodeableConcept as its first code, a
// Quantity as value+unit, a Period as start/end; each with its type.
func summary(nodes []Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		var s string
		switch v := n.Value.(type) {
		case map[string]any:
			switch n.Type {
			case "Reference":
				s, _ = v["reference"].(string)
			case "CodeableConcept":
				codings, _ := v["coding"].([]any)
				if len(codings) > 0 {
					s, _ = codings[0].(map[string]any)["code"].(string)
				}
			case "Quantity", "Age":
				s = string(v["value"].(json.Number)) + " " + v["unit"].(string)
			case "Period":
				start, _ := v["start"].(string)
				end, _ := v["end"].(string)
				s = start + "/" + end
			default:
				s, _ = v["resourceType"].(string)
			}
		default:
			b, _ := json.Marshal(v)
			s = strings.Trim(string(b), `"`)
		}
		out = append(out, s+":"+n.Type)
	}
	return out
}

func TestSearchParameterValues(t *testing.T) {
	params := coreSearchParams(t)
	tests := []struct {
		name, param, example string
		want                 []string
	}{
		{"family names", "individual-family", "Patient-example", []string{"Chalmers:string", "Windsor:string"}},
		{"birth date with an extension object", "individual-birthdate", "Patient-example", []string{"1974-12-25:date"}},
		{"deceased boolean false", "Patient-deceased", "Patient-example", []string{"false:System.Boolean"}},
		{"observation code", "clinical-code", "Observation-example", []string{"29463-7:CodeableConcept"}},
		{"clinical patient through resolve() is Patient", "clinical-patient", "Observation-example", []string{"Patient/example:Reference"}},
		{"value as Quantity", "Observation-value-quantity", "Observation-example", []string{"185 lbs:Quantity"}},
		{"effective dateTime", "clinical-date", "Observation-example", []string{"2016-03-28:dateTime"}},
		{"effective Period", "clinical-date", "Observation-f001", []string{"2013-04-02T09:30:10+01:00/:Period"}},
		{"component values", "Observation-component-value-quantity", "Observation-blood-pressure", []string{"107 mmHg:Quantity", "60 mmHg:Quantity"}},
		{"onset as dateTime", "Condition-onset-date", "Condition-example", []string{"2012-05-24:dateTime"}},
		{"onset as Age", "Condition-onset-age", "Condition-f202", []string{"52 years:Age"}},
		{"onset as dateTime absent", "Condition-onset-date", "Condition-f202", []string{}},
		{"abatement as string", "Condition-abatement-string", "Condition-f201", []string{"around April 9, 2013:string"}},
		{"encounter period", "clinical-date", "Encounter-home", []string{"2015-01-17T16:00:00+10:00/2015-01-17T16:30:00+10:00:Period"}},
		{"participant where resolve() is Practitioner", "Encounter-practitioner", "Encounter-home", []string{"Practitioner/example:Reference"}},
		{"subject where resolve() is Patient", "clinical-patient", "Encounter-home", []string{"Patient/example:Reference"}},
		{"document composition", "Bundle-composition", "Bundle-father", []string{"Composition:Composition"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := MustCompile(searchParamExpr(t, params, tc.param))
			got, err := e.Evaluate(exampleNamed(t, tc.example), Env{Types: SpecTypes})
			if err != nil {
				t.Fatal(err)
			}
			if s := summary(got); !slices.Equal(s, tc.want) {
				t.Errorf("%s on %s:\n got %q\nwant %q", tc.param, tc.example, s, tc.want)
			}
		})
	}
}

func TestUSCoreExtensions(t *testing.T) {
	data := testenv.SharedData(t)
	pkg := filepath.Join(data, "us-core", "hl7.fhir.us.core-6.1.0.tgz")
	params := loadSearchParams(t, pkg)
	files := readTgz(t, pkg, func(n string) bool { return n == "package/example/Patient-example.json" })
	b, ok := files["package/example/Patient-example.json"]
	if !ok {
		t.Fatal("no Patient-example in US Core 6.1.0")
	}
	patient := decodeJSON(t, "Patient-example", b)
	tests := []struct {
		param string
		want  []string
	}{
		{"us-core-race", []string{"2106-3:code", "1002-5:code", "2028-9:code", "1586-7:code", "2036-2:code"}},
		{"us-core-ethnicity", []string{"2135-2:code", "2184-0:code", "2148-5:code"}},
		{"us-core-patient-gender-identity", []string{"UNK:code"}},
		{"us-core-patient-family", []string{"Shaw:string", "Baxter:string"}},
	}
	for _, tc := range tests {
		t.Run(tc.param, func(t *testing.T) {
			got, err := MustCompile(searchParamExpr(t, params, tc.param)).Evaluate(patient, Env{Types: SpecTypes})
			if err != nil {
				t.Fatal(err)
			}
			if s := summary(got); !slices.Equal(s, tc.want) {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func BenchmarkObservationSearchParams(b *testing.B) {
	var exprs []*Expr
	for _, sp := range coreSearchParams(b) {
		if sp.Expression != "" && applies(sp.Base, "Observation") {
			exprs = append(exprs, MustCompile(sp.Expression))
		}
	}
	var obs map[string]any
	for _, ex := range officialExamples(b) {
		if ex.name == "package/Observation-f001.json" {
			obs = ex.resource
		}
	}
	env := Env{Types: SpecTypes}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, e := range exprs {
			if _, err := e.Evaluate(obs, env); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(exprs)), "exprs/op")
}
