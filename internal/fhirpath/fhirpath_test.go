package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// tinyTypes is a hand-written TypeResolver covering the elements the table
// tests touch, so that the evaluator is tested apart from the R4 tables.
type tinyTypes struct{}

var tinyElements = map[string][]string{
	"Patient.name":                 {"HumanName"},
	"Patient.birthDate":            {"date"},
	"Patient.deceased":             {"boolean", "dateTime"},
	"Patient.extension":            {"Extension"},
	"Patient.contained":            {"Resource"},
	"Patient.managingOrganization": {"Reference"},
	"Patient.generalPractitioner":  {"Reference"},
	"Patient.link":                 {"BackboneElement"},
	"Patient.link.other":           {"Reference"},
	"Patient.link.type":            {"code"},
	"Patient.multipleBirth":        {"boolean", "integer"},
	"HumanName.family":             {"string"},
	"HumanName.given":              {"string"},
	"HumanName.use":                {"code"},
	"HumanName.period":             {"Period"},
	"Period.start":                 {"dateTime"},
	"Period.end":                   {"dateTime"},
	"Extension.url":                {"uri"},
	"Extension.extension":          {"Extension"},
	"Extension.value":              {"Coding", "string", "dateTime", "Quantity", "Age"},
	"Coding.code":                  {"code"},
	"Coding.system":                {"uri"},
	"Reference.reference":          {"string"},
	"Organization.name":            {"string"},
}

var tinyBases = map[string]string{
	"Patient": "DomainResource", "Organization": "DomainResource",
	"DomainResource": "Resource", "Age": "Quantity", "code": "string",
	"Practitioner": "DomainResource", "RelatedPerson": "DomainResource",
	"HumanName": "Element", "Reference": "Element", "Period": "Element",
}

func (tinyTypes) ElementType(parent, name string) ([]string, bool) {
	t, ok := tinyElements[parent+"."+name]
	return t, ok
}

func (tinyTypes) BaseType(name string) (string, bool) {
	b, ok := tinyBases[name]
	return b, ok
}

const patientJSON = `{
  "resourceType": "Patient",
  "id": "p1",
  "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
  "extension": [
    {"url": "http://example.org/race", "extension": [
      {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
      {"url": "text", "valueString": "White"}
    ]},
    {"url": "http://example.org/age", "valueAge": {"value": 42, "unit": "a"}}
  ],
  "name": [
    {"use": "official", "family": "Chalmers", "given": ["Peter", "James"], "period": {"start": "2001-02"}},
    {"use": "usual", "given": [null, "Jim"], "_given": [{"extension": [{"url": "http://example.org/absent", "valueString": "masked"}]}, null]}
  ],
  "birthDate": "1974-12-25",
  "_birthDate": {"id": "bd", "extension": [{"url": "http://example.org/birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
  "deceasedDateTime": "2020-01-02",
  "multipleBirthInteger": 2,
  "managingOrganization": {"reference": "#org"},
  "generalPractitioner": [
    {"reference": "Practitioner/7"},
    {"reference": "https://ehr.example.org/fhir/Patient/9/_history/3"},
    {"reference": "urn:uuid:9d3f4a6e-9c64-4a3a-8e7e-6e9a4c1b2f11"},
    {"display": "no reference"}
  ],
  "link": [{"other": {"reference": "RelatedPerson/5"}, "type": "seealso"}]
}`

func decode(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

// show renders a result compactly: primitives as themselves, complex
// values as JSON, each with its type.
func show(nodes []Node) string {
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		var v string
		switch x := n.Value.(type) {
		case map[string]any:
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(x)
			v = strings.TrimSpace(b.String())
		case nil:
			v = "<nil>"
		default:
			v = fmt.Sprint(x)
		}
		parts[i] = v + ":" + n.Type
	}
	return strings.Join(parts, " ")
}

func TestEvaluate(t *testing.T) {
	patient := decode(t, patientJSON)
	tests := []struct {
		name, expr, want string
	}{
		{"path navigation through arrays", "Patient.name.given", "Peter:string James:string <nil>:string Jim:string"},
		{"a path on another type is empty", "Observation.code", ""},
		{"typed complex value", "Patient.name.period", `{"start":"2001-02"}:Period`},
		{"primitive with its extension object", "Patient.birthDate", "1974-12-25:date"},
		{"extension of a primitive", "Patient.birthDate.extension('http://example.org/birthTime').value", "1974-12-25T14:35:45-05:00:dateTime"},
		{"choice by its typed JSON name", "Patient.birthDate.extension.valueDateTime", "1974-12-25T14:35:45-05:00:dateTime"},
		{"id of a primitive", "Patient.birthDate.id", "bd:string"},
		{"extension-only array item exists without a value", "Patient.name[1].given.first().hasValue()", "false:System.Boolean"},
		{"choice navigation", "Patient.deceased", "2020-01-02:dateTime"},
		{"as keeps the matching choice", "Patient.deceased as dateTime", "2020-01-02:dateTime"},
		{"as drops other types", "(Patient.deceased as boolean)", ""},
		{"as() function form", "Patient.multipleBirth.as(integer)", "2:integer"},
		{"ofType", "Patient.extension.value.ofType(Quantity)", `{"unit":"a","value":42}:Age`},
		{"is honours the type hierarchy", "Patient.extension('http://example.org/age').value is Quantity", "true:System.Boolean"},
		{"is with a namespace", "Patient.birthDate is FHIR.date", "true:System.Boolean"},
		{"is false", "Patient.birthDate is dateTime", "false:System.Boolean"},
		{"is() function form", "Patient.birthDate.is(date)", "true:System.Boolean"},
		{"where with equality", "Patient.name.where(use = 'official').family", "Chalmers:string"},
		{"where with inequality", "Patient.name.where(use != 'official').use", "usual:code"},
		{"where with and/or", "Patient.name.where(use = 'official' and family.exists() or use = 'x').given.count()", "2:System.Integer"},
		{"extension where url", "Patient.extension.where(url = 'http://example.org/race').extension.value.code", "2106-3:code"},
		{"extension(url)", "Patient.extension('http://example.org/race').extension('text').value", "White:string"},
		{"hasExtension", "Patient.hasExtension('http://example.org/age')", "true:System.Boolean"},
		{"union removes duplicates", "Patient.name.use | Patient.name.use | 'x'", "official:code usual:code x:System.String"},
		{"combine keeps duplicates", "Patient.name.use.combine(Patient.name.use).count()", "4:System.Integer"},
		{"indexing", "Patient.name[0].given[1]", "James:string"},
		{"index out of range", "Patient.name[5]", ""},
		{"first and last", "Patient.name.given.first() | Patient.name.given.last()", "Peter:string Jim:string"},
		{"tail skip take", "Patient.name.given.tail().skip(1).take(2)", "<nil>:string Jim:string"},
		{"exists with criteria", "Patient.name.exists(use = 'usual')", "true:System.Boolean"},
		{"exists false", "Patient.name.exists(use = 'nickname')", "false:System.Boolean"},
		{"empty", "Patient.photo.empty()", "true:System.Boolean"},
		{"not", "Patient.photo.exists().not()", "true:System.Boolean"},
		{"all", "Patient.name.all(given.exists())", "true:System.Boolean"},
		{"resolve a relative reference", "Patient.generalPractitioner.resolve()", `{"id":"7","resourceType":"Practitioner"}:Practitioner {"id":"9","resourceType":"Patient"}:Patient`},
		{"resolve is", "Patient.generalPractitioner.where(resolve() is Patient).reference", "https://ehr.example.org/fhir/Patient/9/_history/3:string"},
		{"resolve a contained resource", "Patient.managingOrganization.resolve().name", "Acme:string"},
		{"resolve in a backbone element", "Patient.link.other.where(resolve() is RelatedPerson)", `{"reference":"RelatedPerson/5"}:Reference`},
		{"resolve is a supertype", "Patient.link.other.resolve() is Resource", "true:System.Boolean"},
		{"%resource", "%resource.id", "p1:"},
		{"$this", "Patient.name.given.where($this = 'James')", "James:string"},
		{"$index", "Patient.name.given.where($index = 1)", "James:string"},
		{"select", "Patient.name.select(family | use)", "Chalmers:string official:code usual:code"},
		{"string functions", "Patient.name.family.startsWith('Cha') and Patient.name.family.endsWith('ers') and Patient.name.family.contains('alm')", "true:System.Boolean"},
		{"matches", "Patient.birthDate.matches('^[0-9]{4}-12')", "true:System.Boolean"},
		{"lower upper substring", "Patient.name.family.lower() & '-' & Patient.name.family.upper() & '-' & Patient.name.family.substring(1, 3)", "chalmers-CHALMERS-hal:System.String"},
		{"length", "Patient.name.family.length()", "8:System.Integer"},
		{"deceased exists and not false", "Patient.deceased.exists() and Patient.deceased != false", "true:System.Boolean"},
		{"date comparison", "Patient.birthDate < @1975-01-01", "true:System.Boolean"},
		{"date comparison across precisions", "Patient.birthDate > @1974", ""},
		{"date equality across precisions decided", "Patient.birthDate = @1973", "false:System.Boolean"},
		{"dateTime and date", "Patient.name.period.start < @2001-03-15", "true:System.Boolean"},
		{"number comparison", "Patient.multipleBirth >= 2", "true:System.Boolean"},
		{"arithmetic precedence", "1 + 2 * 3 - 4 div 3 + 7 mod 4", "9:System.Integer"},
		{"decimal arithmetic", "1.5 * 2 + 10 / 4", "5.5:System.Decimal"},
		{"unary minus", "-(2 - 5)", "3:System.Integer"},
		{"string concatenation", "'a' + 'b' & {} & 'c'", "abc:System.String"},
		{"membership", "'usual' in Patient.name.use and Patient.name.use contains 'official'", "true:System.Boolean"},
		{"equivalence", "'Hello  World' ~ 'hello world'", "true:System.Boolean"},
		{"collection equality", "Patient.name.use = ('official' | 'usual')", "true:System.Boolean"},
		{"equality with empty is empty", "Patient.photo = 'x'", ""},
		{"implies", "(false implies {}) and ({} implies true)", "true:System.Boolean"},
		{"xor", "true xor false", "true:System.Boolean"},
		{"three-valued and", "({} and false) | ({} or true)", "false:System.Boolean true:System.Boolean"},
		{"iif", "iif(Patient.active.exists(), 'yes', 'no')", "no:System.String"},
		{"children", "Patient.link.children()", `{"reference":"RelatedPerson/5"}:Reference seealso:code`},
		{"descendants", "Patient.link.descendants().count()", "3:System.Integer"},
		{"distinct", "(Patient.name.use.combine(Patient.name.use)).distinct().count()", "2:System.Integer"},
		{"constant", "%loinc", "http://loinc.org:System.String"},
		{"comments are ignored", "Patient.id // the id\n /* and more */", "p1:"},
		{"delimited identifier", "Patient.`name`.family", "Chalmers:string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile(tc.expr)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.expr, err)
			}
			got, err := e.Evaluate(patient, Env{Types: tinyTypes{}})
			if err != nil {
				t.Fatalf("Evaluate(%q): %v", tc.expr, err)
			}
			if s := show(got); s != tc.want {
				t.Errorf("%s\n got %s\nwant %s", tc.expr, s, tc.want)
			}
		})
	}
}

func TestEvaluateAtAndResolve(t *testing.T) {
	patient := decode(t, patientJSON)
	names, err := MustCompile("Patient.name").Evaluate(patient, Env{Types: tinyTypes{}})
	if err != nil || len(names) != 2 {
		t.Fatalf("Patient.name: got %d nodes, %v; want 2", len(names), err)
	}
	t.Run("relative to a focus node", func(t *testing.T) {
		got, err := MustCompile("given.first() | %resource.id | %context.use").EvaluateAt(patient, names[0], Env{Types: tinyTypes{}})
		if err != nil {
			t.Fatal(err)
		}
		if s, want := show(got), "Peter:string p1: official:code"; s != want {
			t.Errorf("got %s, want %s", s, want)
		}
	})
	t.Run("Env.Resolve supplies the target", func(t *testing.T) {
		var asked []string
		env := Env{Types: tinyTypes{}, Resolve: func(ref string) (map[string]any, bool) {
			asked = append(asked, ref)
			if ref == "Practitioner/7" {
				return map[string]any{"resourceType": "Organization", "id": "7", "name": "Really an org"}, true
			}
			return nil, false
		}}
		got, err := MustCompile("Patient.generalPractitioner.resolve().ofType(Organization).name | Patient.managingOrganization.resolve().name").Evaluate(patient, env)
		if err != nil {
			t.Fatal(err)
		}
		if s, want := show(got), "Really an org:string Acme:string"; s != want {
			t.Errorf("got %s, want %s", s, want)
		}
		// Contained references never reach the resolver; the urn:uuid one does.
		if want := []string{"Practitioner/7", "https://ehr.example.org/fhir/Patient/9/_history/3", "urn:uuid:9d3f4a6e-9c64-4a3a-8e7e-6e9a4c1b2f11"}; !slices.Equal(asked, want) {
			t.Errorf("resolver asked %q, want %q", asked, want)
		}
	})
}

func TestEvaluateWithoutTypes(t *testing.T) {
	patient := decode(t, patientJSON)
	tests := []struct {
		name, expr, want string
	}{
		{"resource type from resourceType", "Patient", "Patient"},
		{"unknown element types stay empty", "Patient.name.family", ""},
		{"choice type spelled by the JSON name", "Patient.deceased", "dateTime"},
		{"complex choice type", "Patient.extension.value", "Age"},
		{"as works on the spelled type", "Patient.extension.value as Age", "Age"},
		{"contained resource typed by resourceType", "Patient.contained", "Organization"},
		{"resolve without definitions", "Patient.generalPractitioner.resolve()", "Practitioner Patient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MustCompile(tc.expr).Evaluate(patient, Env{})
			if err != nil {
				t.Fatal(err)
			}
			types := make([]string, len(got))
			for i, n := range got {
				types[i] = n.Type
			}
			if s := strings.Join(types, " "); s != tc.want {
				t.Errorf("%s: got types %q, want %q", tc.expr, s, tc.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	patient := decode(t, patientJSON)
	tests := []struct {
		name, expr, wantErr string
	}{
		{"string function on several items", "Patient.name.given.startsWith('P')", "single item"},
		{"comparison of several items", "Patient.name.use > 'a'", "single item"},
		{"comparison of unlike types", "Patient.birthDate < 3", "cannot compare"},
		{"arithmetic on strings", "'a' - 1", "needs numbers"},
		{"boolean of several items", "Patient.name.use and true", "single Boolean"},
		{"bad regular expression", "Patient.id.matches('(')", "matches()"},
		{"single on several", "Patient.name.single()", "single()"},
		{"non-integer index", "Patient.name['a']", "integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MustCompile(tc.expr).Evaluate(patient, Env{Types: tinyTypes{}})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Evaluate(%q): got error %v, want one containing %q", tc.expr, err, tc.wantErr)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, expr, wantErr string
	}{
		{"empty", "", "end of expression"},
		{"dangling operator", "Patient.name |", "end of expression"},
		{"unbalanced parenthesis", "(Patient.name", `expected ")"`},
		{"unknown function", "Patient.name.frobnicate()", "unknown or unsupported function"},
		{"wrong argument count", "Patient.name.where()", "takes 1 argument"},
		{"type function without a type", "Patient.name.ofType('x')", "needs a type name"},
		{"unterminated string", "Patient.name.where(use = 'x)", "unterminated"},
		{"unknown environment variable", "%nope", "unknown environment variable"},
		{"unsupported variable", "$total", "unsupported variable"},
		{"time literal", "@T12:00", "unsupported date/time literal"},
		{"stray character", "Patient.name ^ 2", "unexpected character"},
		{"trailing tokens", "Patient.name Patient", "unexpected"},
		{"bad escape", `'a\q'`, "unknown escape"},
		{"nesting too deep", strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000), "nested too deeply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.expr)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Compile(%q): got error %v, want one containing %q", tc.expr, err, tc.wantErr)
			}
		})
	}
}

func TestParsePrecedence(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"a | b = c", "((a | b) = c)"},
		{"a = b and c or d implies e", "((((a = b) and c) or d) implies e)"},
		{"a.b as X | c", "((a.b as X) | c)"},
		{"a + b * c", "(a + (b * c))"},
		{"a in b and c contains d", "((a in b) and (c contains d))"},
		{"-a.b", "-a.b"},
		{"a < b = c <= d", "((a < b) = (c <= d))"},
		{"x.where(y is FHIR.Quantity)", "x.where((y is Quantity))"},
		{"x.as(System.String)", "x.as(System.String)"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			if got := MustCompile(tc.expr).root.String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestConcurrentEvaluation(t *testing.T) {
	patient := decode(t, patientJSON)
	e := MustCompile("Patient.name.where(use = 'official').given | Patient.generalPractitioner.where(resolve() is Patient)")
	want := "Peter:string James:string {\"reference\":\"https://ehr.example.org/fhir/Patient/9/_history/3\"}:Reference"
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				got, err := e.Evaluate(patient, Env{Types: tinyTypes{}})
				if err != nil {
					t.Error(err)
					return
				}
				if s := show(got); s != want {
					t.Errorf("got %s, want %s", s, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"Patient.name.where(use = 'official').family",
		"(Observation.value as Quantity) | (Observation.value as SampledData)",
		"Patient.extension('http://x').value.ofType(Coding).code",
		"Bundle.entry[0].resource",
		"1 + 2 * -3 div 4 mod 5 & 'x' ~ 'y' !~ 'z'",
		"@2020-01-02T10:00:00Z < @2021 implies %resource.id.exists()",
		"`delimited`.$this.iif(true, {}, 'a\\u0041')",
	} {
		f.Add(s)
	}
	patient := decode(f, patientJSON)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Compile(s)
		if err != nil {
			return
		}
		// Whatever compiles must evaluate without panicking.
		_, _ = e.Evaluate(patient, Env{Types: tinyTypes{}})
	})
}
