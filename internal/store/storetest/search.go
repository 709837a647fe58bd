package storetest

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// SearchBase is the FHIR base URL of the registry RunSearch hands to open.
const SearchBase = "http://example.org/fhir"

// RunSearch runs the search conformance suite. open returns a fresh,
// migrated, empty store that indexes with reg; RunSearch closes it.
func RunSearch(t *testing.T, open func(t *testing.T, reg *search.Registry) store.Store) {
	reg, err := search.NewRegistry(search.Config{Base: SearchBase,
		Now: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	fresh := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t, reg)
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, reg *search.Registry, s store.Store)
	}{
		{"ParametersOfEveryType", testSearchTypes},
		{"UpdateAndDeleteReplaceIndexRows", testSearchUpdates},
		{"PatientIndexesFollowWrites", testSearchByPatient},
		{"PagingIsKeysetAndStable", testSearchPaging},
		{"SortByParameters", testSearchSort},
		{"UnionParameters", testSearchUnions},
		{"TotalOnlyWhenAsked", testSearchTotal},
		{"IncludeAndRevInclude", testSearchInclude},
		{"ChainAndHas", testSearchChain},
		{"TxSearchSeesItsOwnWrites", testSearchInTx},
		{"ManyCreatesInOneUnitOfWork", testManyCreates},
		{"Compartment", testSearchCompartment},
		{"SecurityAndSource", testSearchMeta},
		{"TokenForms", testSearchTokenForms},
		{"LastUpdatedPrefixes", testSearchLastUpdated},
		{"TotalModes", testSearchTotalModes},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, reg, fresh(t)) })
	}
}

// create stores resources (JSON bodies with resourceType and id) as
// version 1 in one unit of work.
func create(t *testing.T, s store.Store, bodies ...string) {
	t.Helper()
	err := s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return createIn(ctx, tx, bodies...)
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
}

// createIn stores resources as version 1 in the unit of work tx.
func createIn(ctx context.Context, tx store.Tx, bodies ...string) error {
	for _, b := range bodies {
		typ, id := typeAndID(b)
		if err := tx.Put(ctx, &store.Version{Type: typ, ID: id, VersionID: 1, Method: "POST", Body: []byte(b)}); err != nil {
			return err
		}
	}
	return nil
}

func typeAndID(b string) (typ, id string) {
	// The bodies here are written by the tests, always starting with
	// {"resourceType":"T","id":"x".
	parts := strings.SplitN(b, `"`, 9)
	return parts[3], parts[7]
}

// find runs a search given as a query string and returns the ids of the
// matches, in order.
func find(t *testing.T, reg *search.Registry, s store.Store, typ, query string) []string {
	t.Helper()
	res := run(t, reg, s, typ, query)
	return matchIDs(res.Matches)
}

func run(t *testing.T, reg *search.Registry, s store.Store, typ, query string) *store.SearchResult {
	t.Helper()
	params, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	q, issues, err := reg.Parse(typ, params, true)
	if err != nil {
		t.Fatalf("Parse(%s?%s): %v (%v)", typ, query, err, issues)
	}
	if q.Count < 0 {
		q.Count = 100
	}
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%s?%s): %v", typ, query, err)
	}
	return res
}

func matchIDs(vs []*store.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func sortedIDs(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return out
}

func testSearchTypes(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Patient","id":"p1","name":[{"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25","identifier":[{"system":"urn:mrn","value":"12345","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]}}],"address":[{"city":"PleasantVille","state":"Vic"}],"telecom":[{"system":"phone","value":"555-1234"}],"active":true}`,
		`{"resourceType":"Patient","id":"p2","name":[{"family":"Müller","given":["Zoë"]}],"gender":"female","birthDate":"1980-03","active":false}`,
		`{"resourceType":"Patient","id":"p3","name":[{"family":"Chalmersson"}],"gender":"other","meta":{"tag":[{"system":"urn:t","code":"test"}],"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]}}`,
		// A ContactPoint's value is a string, searched in any case; an
		// identifier is a code, searched as written (R4 search.html#token).
		`{"resourceType":"Patient","id":"p4","gender":"other","active":false,"identifier":[{"system":"urn:mrn","value":"AbC-789"}],"telecom":[{"system":"email","value":"Amy.Shaw@Example.COM"},{"system":"phone","value":"555-CALL-NOW"}]}`,
		`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}],"text":"Weight"},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2013-04-02T10:30:10+01:00","valueQuantity":{"value":185,"unit":"lbs","system":"http://unitsofmeasure.org","code":"[lb_av]"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"`+SearchBase+`/Patient/p2"},"effectivePeriod":{"start":"2013-04-01","end":"2013-04-05"},"valueQuantity":{"value":72.5,"system":"http://unitsofmeasure.org","code":"/min"}}`,
		`{"resourceType":"Observation","id":"o3","status":"preliminary","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/p1"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`,
		`{"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/p1"},"prediction":[{"probabilityDecimal":0.25}]}`,
		// The same reference twice, in one element list: found once.
		`{"resourceType":"Observation","id":"o4","status":"cancelled","code":{"coding":[{"system":"http://loinc.org","code":"0000-0"}]},"subject":{"reference":"Patient/p3"},"performer":[{"reference":"Patient/p3"},{"reference":"Patient/p3","display":"again"}]}`,
		// The same coding and identifier twice: equal index rows, found once.
		`{"resourceType":"Observation","id":"o5","status":"cancelled","code":{"coding":[{"system":"urn:x","code":"dup"},{"system":"urn:x","code":"dup"}]},"identifier":[{"system":"urn:x","value":"dup"},{"system":"urn:x","value":"dup"}],"subject":{"reference":"Group/g1"}}`,
		`{"resourceType":"ValueSet","id":"v1","status":"active","url":"http://acme.org/fhir/ValueSet/123"}`,
	)
	for _, tc := range []struct {
		name, typ, query string
		want             []string
	}{
		{"string prefix is case-insensitive", "Patient", "name=chalm", []string{"p1", "p3"}},
		{"string matches any name part", "Patient", "name=james", []string{"p1"}},
		{"string is accent-insensitive", "Patient", "name=muller", []string{"p2"}},
		{"string exact", "Patient", "family:exact=Chalmers", []string{"p1"}},
		{"string contains", "Patient", "name:contains=MERS", []string{"p1", "p3"}},
		{"address part", "Patient", "address-city=pleasant", []string{"p1"}},
		{"token code", "Patient", "gender=male", []string{"p1"}},
		{"token OR", "Patient", "gender=male,female", []string{"p1", "p2"}},
		{"token AND", "Patient", "gender=male,female&name=zo", []string{"p2"}},
		{"token not", "Patient", "gender:not=male", []string{"p2", "p3", "p4"}},
		{"token boolean", "Patient", "active=true", []string{"p1"}},
		{"token system|code", "Patient", "identifier=urn:mrn|12345", []string{"p1"}},
		{"token wrong system", "Patient", "identifier=urn:other|12345", nil},
		{"token of-type", "Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345", []string{"p1"}},
		{"token ContactPoint", "Patient", "phone=555-1234", []string{"p1"}},
		{"token email in another case", "Patient", "email=amy.shaw@example.com", []string{"p4"}},
		{"token email in another case, no system", "Patient", "email=|AMY.SHAW@EXAMPLE.COM", []string{"p4"}},
		{"token email:not in another case", "Patient", "email:not=AMY.SHAW@example.com", []string{"p1", "p2", "p3"}},
		{"token phone in another case", "Patient", "phone=555-call-now", []string{"p4"}},
		{"token identifier as written", "Patient", "identifier=urn:mrn|AbC-789", []string{"p4"}},
		{"token identifier is case-sensitive", "Patient", "identifier=urn:mrn|abc-789,ABC-789", nil},
		{"token text", "Observation", "code:text=body", []string{"o1"}},
		{"token missing", "Patient", "gender:missing=false&active:missing=true", []string{"p3"}},
		{"_tag", "Patient", "_tag=urn:t|test", []string{"p3"}},
		{"_profile", "Patient", "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", []string{"p3"}},
		{"_id", "Patient", "_id=p1,p3", []string{"p1", "p3"}},
		{"date eq day", "Patient", "birthdate=1974-12-25", []string{"p1"}},
		{"date eq year contains month", "Patient", "birthdate=1980", []string{"p2"}},
		{"date eq day inside month is not eq", "Patient", "birthdate=1980-03-10", nil},
		{"date gt", "Patient", "birthdate=gt1975", []string{"p2"}},
		{"date lt", "Patient", "birthdate=lt1975", []string{"p1"}},
		{"date ge with offset", "Observation", "date=ge2013-04-02T09:30:10Z", []string{"o1", "o2"}},
		{"date gt with offset", "Observation", "date=gt2013-04-02T09:30:10Z", []string{"o2"}},
		{"date le period", "Observation", "date=le2013-04-02", []string{"o1", "o2"}},
		{"date le needs part of the range before", "Observation", "date=le2013-04-01", nil},
		{"date sa", "Observation", "date=sa2013-04-01", []string{"o1"}},
		{"date eb", "Observation", "date=eb2013-04-02", nil},
		{"date ap", "Observation", "date=ap2013-04-02", []string{"o1", "o2"}},
		{"reference Type/id", "Observation", "subject=Patient/p1", []string{"o1", "o3"}},
		{"reference absolute on our base", "Observation", "subject=" + SearchBase + "/Patient/p2", []string{"o2"}},
		{"reference id with type modifier", "Observation", "subject:Patient=p2", []string{"o2"}},
		{"reference bare id", "Observation", "patient=p1", []string{"o1", "o3"}},
		{"reference named twice in one resource", "Observation", "performer=Patient/p3", []string{"o4"}},
		{"reference bare id, one target type", "Observation", "patient=p3", []string{"o4"}},
		{"token named twice in one resource", "Observation", "code=urn:x|dup&identifier=urn:x|dup", []string{"o5"}},
		{"reference missing", "Observation", "subject:missing=true", nil},
		{"quantity value", "Observation", "value-quantity=185", []string{"o1"}},
		{"quantity with system and code", "Observation", "value-quantity=gt70|http://unitsofmeasure.org|/min", []string{"o2"}},
		{"quantity by unit", "Observation", "value-quantity=185||lbs", []string{"o1"}},
		{"quantity precision", "Observation", "value-quantity=72.5", []string{"o2"}},
		{"quantity lt", "Observation", "value-quantity=lt100", []string{"o2"}},
		{"composite code-value-quantity", "Observation", "code-value-quantity=http://loinc.org|29463-7$gt180", []string{"o1"}},
		{"composite component in same group", "Observation", "component-code-value-quantity=http://loinc.org|8480-6$120", []string{"o3"}},
		{"composite component in another group", "Observation", "component-code-value-quantity=http://loinc.org|8480-6$80", nil},
		{"number", "RiskAssessment", "probability=0.25", []string{"r1"}},
		{"number gt", "RiskAssessment", "probability=gt0.3", nil},
		{"uri", "ValueSet", "url=http://acme.org/fhir/ValueSet/123", []string{"v1"}},
		{"uri below", "ValueSet", "url:below=http://acme.org/fhir/", []string{"v1"}},
		{"uri above", "ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/5", []string{"v1"}},
		{"status and code", "Observation", "status=final&code=http://loinc.org|8867-4", []string{"o2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sortedIDs(find(t, reg, s, tc.typ, tc.query))
			if want := sortedIDs(tc.want); !slices.Equal(got, want) {
				t.Errorf("%s?%s = %v, want %v", tc.typ, tc.query, got, want)
			}
		})
	}
}

func testSearchUpdates(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s, `{"resourceType":"Patient","id":"a","gender":"male"}`, `{"resourceType":"Patient","id":"b","gender":"male"}`)
	ctx := context.Background()
	err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Put(ctx, &store.Version{Type: "Patient", ID: "a", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Patient","id":"a","gender":"female"}`)}); err != nil {
			return err
		}
		return tx.Put(ctx, &store.Version{Type: "Patient", ID: "b", VersionID: 2, Method: "DELETE", Deleted: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(t, reg, s, "Patient", "gender=male"); len(got) != 0 {
		t.Errorf("gender=male after the update and the delete = %v, want none", got)
	}
	if got := find(t, reg, s, "Patient", "gender=female"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("gender=female = %v, want [a]", got)
	}
	if got := find(t, reg, s, "Patient", ""); !slices.Equal(got, []string{"a"}) {
		t.Errorf("all patients = %v, want [a] (b is deleted)", got)
	}
}

// testSearchByPatient checks that a search for a patient's resources with
// a token or a date, which reads the index tables by patient
// (search_token_patient, search_date_patient), follows every write: an
// update that moves a resource to another patient or changes its code or
// date, a delete, and a resource whose `patient` parameter names two
// patients. Only the parameters that US Core searches with `patient` have
// rows there (Observation category and code, Encounter class and date); the
// others' searches by patient (Observation combo-code, Provenance
// agent-type and recorded) must find the same resources another way.
func testSearchByPatient(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Provenance","id":"pv","target":[{"reference":"Patient/a"},{"reference":"Patient/b"},{"reference":"Observation/o1"}],"recorded":"2024-01-01T00:00:00Z","agent":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/provenance-participant-type","code":"author"}]},"who":{"reference":"Practitioner/x"}}]}`,
		`{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/a"},"period":{"start":"2015-03-01T10:00:00Z","end":"2015-03-01T11:00:00Z"}}`,
		`{"resourceType":"Encounter","id":"e2","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/a"},"period":{"start":"2012-06-01","end":"2012-06-02"}}`)
	check := func(typ, query string, want ...string) {
		t.Helper()
		if got := find(t, reg, s, typ, query); !slices.Equal(got, want) {
			t.Errorf("%s?%s = %v, want %v", typ, query, got, want)
		}
	}
	check("Observation", "patient=a&category=laboratory", "o1")
	check("Observation", "patient=Patient/a&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory&status=final", "o1")
	check("Observation", "patient=a&category=http://loinc.org|laboratory")
	check("Observation", "patient=a&code=8302-2", "o2")
	check("Observation", "patient=a&combo-code=8302-2", "o2")
	check("Observation", "patient=b&category=laboratory")
	check("Encounter", "patient=a&class=AMB", "e1", "e2")
	check("Provenance", "patient=a&agent-type=author", "pv")
	check("Provenance", "patient=b&agent-type=author", "pv")
	check("Provenance", "patient=b&when=2024")
	check("Provenance", "patient=b&recorded=2024", "pv")
	check("Encounter", "patient=a&date=ge2015-01-01", "e1")
	check("Encounter", "patient=a&date=lt2015-01-01", "e2")
	check("Encounter", "patient=a&date=2015-03-01", "e1")
	check("Encounter", "patient=a&date=2015-03-01T10:30:00Z") // eq: the second does not contain the hour
	check("Encounter", "patient=a&date=ap2012-06", "e2")
	check("Encounter", "patient=b&date=ge2000")

	ctx := context.Background()
	err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: "o1", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/b"}}`)}); err != nil {
			return err
		}
		if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: "o2", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/a"}}`)}); err != nil {
			return err
		}
		if err := tx.Put(ctx, &store.Version{Type: "Encounter", ID: "e2", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Encounter","id":"e2","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/b"},"period":{"start":"2016-06-01","end":"2016-06-02"}}`)}); err != nil {
			return err
		}
		return tx.Put(ctx, &store.Version{Type: "Provenance", ID: "pv", VersionID: 2, Method: "DELETE", Deleted: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	check("Observation", "patient=a&category=laboratory")
	check("Observation", "patient=b&category=laboratory", "o1")
	check("Observation", "patient=a&code=8302-2")
	check("Observation", "patient=a&code=8867-4", "o2")
	check("Observation", "patient=a&combo-code=8302-2")
	check("Observation", "patient=a&combo-code=8867-4", "o2")
	check("Observation", "patient=a&category=vital-signs")
	check("Provenance", "patient=a&agent-type=author")
	check("Provenance", "patient=b&agent-type=author")
	check("Provenance", "patient=b&recorded=2024")
	check("Encounter", "patient=a&date=lt2015-01-01")
	check("Encounter", "patient=a&date=ge2015-01-01", "e1")
	check("Encounter", "patient=b&date=ge2016", "e2")
	check("Encounter", "patient=a&class=AMB", "e1")
	check("Encounter", "patient=b&class=AMB", "e2")
}

func page(t *testing.T, reg *search.Registry, s store.Store, typ, query, cursor string, count int) *store.SearchResult {
	t.Helper()
	params, _ := url.ParseQuery(query)
	q, _, err := reg.Parse(typ, params, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count, q.Cursor = count, cursor
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	return res
}

// pageByOne runs a search one match per page, following the next links,
// and returns the ids in order.
func pageByOne(t *testing.T, reg *search.Registry, s store.Store, typ, query string) []string {
	t.Helper()
	res := page(t, reg, s, typ, query, "", 1)
	got := matchIDs(res.Matches)
	for res.Next != "" {
		res = page(t, reg, s, typ, query, res.Next, 1)
		got = append(got, matchIDs(res.Matches)...)
	}
	return got
}

func testSearchPaging(t *testing.T, reg *search.Registry, s store.Store) {
	t.Run("driven by a token", func(t *testing.T) {
		checkPaging(t, reg, s, "Patient", "gender=male", func(id string) string {
			return `{"resourceType":"Patient","id":"` + id + `","gender":"male"}`
		})
	})
	// A reference with type and id is walked through its index entries
	// (grouped by rid), forward and backward.
	t.Run("driven by a walked reference", func(t *testing.T) {
		checkPaging(t, reg, s, "Observation", "patient=pp", func(id string) string {
			return `{"resourceType":"Observation","id":"` + id + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pp"}}`
		})
	})
	// A patient with a token is walked through the patient's tokens
	// (search_token_patient); the other resources of the patient and
	// the other patients' are not on the pages.
	t.Run("driven by a patient's token", func(t *testing.T) {
		create(t, s,
			`{"resourceType":"Condition","id":"other-code","code":{"coding":[{"system":"http://snomed.info/sct","code":"2"}]},"subject":{"reference":"Patient/pt"}}`,
			`{"resourceType":"Condition","id":"other-patient","code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]},"subject":{"reference":"Patient/pu"}}`)
		checkPaging(t, reg, s, "Condition", "patient=pt&code=http://snomed.info/sct|1", func(id string) string {
			return `{"resourceType":"Condition","id":"` + id + `","code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]},"subject":{"reference":"Patient/pt"}}`
		})
	})
	// More matches than a store may collect for a page of one condition
	// (sqlstore reads at most 1,000 index rows for it): the pages are
	// chosen as any other search's, forward and backward.
	t.Run("driven by a token with many rows", func(t *testing.T) {
		var bodies, want []string
		for i := range 1100 {
			id := fmt.Sprintf("m%04d", i)
			bodies = append(bodies, `{"resourceType":"Patient","id":"`+id+`","gender":"other"}`)
			want = append(want, id)
		}
		create(t, s, bodies...)
		var got []string
		var last *store.SearchResult
		for res := page(t, reg, s, "Patient", "gender=other", "", 400); ; res = page(t, reg, s, "Patient", "gender=other", res.Next, 400) {
			got = append(got, matchIDs(res.Matches)...)
			if last = res; res.Next == "" || len(got) > len(want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages = %d ids (%v … %v), want m0000 … m1099", len(got), got[:min(3, len(got))], got[max(0, len(got)-3):])
		}
		back := page(t, reg, s, "Patient", "gender=other", last.Prev, 400)
		if g := matchIDs(back.Matches); !slices.Equal(g, want[400:800]) {
			t.Errorf("previous of the last page = %d ids from %v, want m0400 … m0799", len(g), g[:min(1, len(g))])
		}
	})
	// A page after a cursor that nothing follows any more is empty.
	t.Run("driven by a token, nothing after the cursor", func(t *testing.T) {
		create(t, s, `{"resourceType":"Patient","id":"u1","gender":"unknown"}`, `{"resourceType":"Patient","id":"u2","gender":"unknown"}`,
			`{"resourceType":"Patient","id":"u3","gender":"unknown"}`)
		res := page(t, reg, s, "Patient", "gender=unknown", "", 2)
		err := s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: "u3", VersionID: 2, Method: "DELETE", Deleted: true})
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Next == "" {
			t.Fatal("the first page of 2 of 3 has no next cursor")
		}
		if res = page(t, reg, s, "Patient", "gender=unknown", res.Next, 2); len(res.Matches) != 0 || res.Next != "" {
			t.Errorf("the page after the deleted last match: %v, next %q; want none and no next", matchIDs(res.Matches), res.Next)
		}
	})
	t.Run("driven by a patient's dates", func(t *testing.T) {
		create(t, s,
			`{"resourceType":"Encounter","id":"too-early","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pd"},"period":{"start":"2001-01-01","end":"2001-01-02"}}`,
			`{"resourceType":"Encounter","id":"other-patient","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pe"},"period":{"start":"2021-01-01"}}`)
		checkPaging(t, reg, s, "Encounter", "patient=pd&date=ge2020", func(id string) string {
			return `{"resourceType":"Encounter","id":"` + id + `","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pd"},"period":{"start":"2021-01-01"}}`
		})
	})
}

// checkPaging creates p0…p6 of typ with body, then pages query by 3: a
// resource created between pages shows up once, the previous page of the
// second is the first, and a forged cursor is refused.
func checkPaging(t *testing.T, reg *search.Registry, s store.Store, typ, query string, body func(id string) string) {
	for i := range 7 {
		create(t, s, body(fmt.Sprintf("p%d", i)))
	}
	var got []string
	res := page(t, reg, s, typ, query, "", 3)
	if res.Prev != "" {
		t.Errorf("first page has a previous cursor")
	}
	got = append(got, matchIDs(res.Matches)...)
	// A resource created between pages sorts after the cursor and shows
	// up once; one created before it does not shift the pages.
	create(t, s, body("late"))
	second := res.Next
	for n := 0; res.Next != ""; n++ {
		if n == 10 {
			t.Fatalf("paging does not end: %v so far", got)
		}
		res = page(t, reg, s, typ, query, res.Next, 3)
		got = append(got, matchIDs(res.Matches)...)
	}
	want := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "late"}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	res = page(t, reg, s, typ, query, second, 3)
	back := page(t, reg, s, typ, query, res.Prev, 3)
	if g := matchIDs(back.Matches); !slices.Equal(g, []string{"p0", "p1", "p2"}) {
		t.Errorf("previous of the second page = %v, want [p0 p1 p2]", g)
	}
	if back.Prev != "" || back.Next == "" {
		t.Errorf("previous page: prev %q, next %q; want no prev and a next", back.Prev, back.Next)
	}
	params, _ := url.ParseQuery(query)
	q, _, _ := reg.Parse(typ, params, true)
	q.Count, q.Cursor = 3, "garbage"
	if _, err := s.Search(context.Background(), q); err == nil {
		t.Error("a forged cursor was accepted")
	}
}

func testSearchSort(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Patient","id":"a","birthDate":"1990","name":[{"family":"Zeta"}]}`,
		`{"resourceType":"Patient","id":"b","birthDate":"1970","name":[{"family":"Alpha"}]}`,
		`{"resourceType":"Patient","id":"c","name":[{"family":"Mu"}]}`,
		`{"resourceType":"Patient","id":"d","birthDate":"1980","name":[{"family":"Alpha"}]}`,
	)
	for _, tc := range []struct {
		sort string
		want []string
	}{
		{"birthdate", []string{"b", "d", "a", "c"}},
		{"-birthdate", []string{"c", "a", "d", "b"}},
		{"family,-birthdate", []string{"d", "b", "c", "a"}},
		{"-_id", []string{"d", "c", "b", "a"}},
	} {
		t.Run(tc.sort, func(t *testing.T) {
			if got := pageByOne(t, reg, s, "Patient", "_sort="+tc.sort); !slices.Equal(got, tc.want) {
				t.Errorf("_sort=%s paged one by one = %v, want %v", tc.sort, got, tc.want)
			}
		})
	}
}

// testSearchUnions checks Observation's combo parameters, which have no
// index rows of their own and are answered from the rows of the two
// parameters they are the union of (internal/search/union.go): every
// modifier, a composite whose groups are the Observation and its
// components, and _sort by the least (greatest) value of either.
func testSearchUnions(t *testing.T, reg *search.Registry, s store.Store) {
	const loinc = `"system":"http://loinc.org","code":`
	create(t, s,
		`{"resourceType":"Observation","id":"w","status":"final","code":{"coding":[{`+loinc+`"29463-7"}],"text":"Body weight"},"valueQuantity":{"value":185,"system":"http://unitsofmeasure.org","code":"[lb_av]"}}`,
		`{"resourceType":"Observation","id":"bp","status":"final","code":{"coding":[{`+loinc+`"85354-9"}],"text":"Blood pressure"},"component":[{"code":{"coding":[{`+loinc+`"8480-6"}],"text":"Systolic"},"valueQuantity":{"value":120}},{"code":{"coding":[{`+loinc+`"8462-4"}]},"valueQuantity":{"value":80}}]}`,
		`{"resourceType":"Observation","id":"a","status":"final","code":{"coding":[{`+loinc+`"72166-2"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"8517006"}]},"component":[{"code":{"coding":[{`+loinc+`"1000-0"}]},"dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"unknown"}]}},{"code":{"coding":[{`+loinc+`"99990-1"}]}}]}`,
		`{"resourceType":"Observation","id":"n","status":"final","code":{"coding":[{`+loinc+`"9999-9"}]}}`,
	)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"combo-code=http://loinc.org|29463-7", []string{"w"}},
		{"combo-code=8480-6", []string{"bp"}},
		{"combo-code=8462-4,9999-9", []string{"bp", "n"}},
		{"combo-code=8462-4&combo-code=85354-9", []string{"bp"}},
		{"combo-code:not=8480-6", []string{"a", "n", "w"}},
		{"combo-code:text=systol", []string{"bp"}},
		{"combo-code:text=blood", []string{"bp"}},
		{"combo-value-quantity=80", []string{"bp"}},
		{"combo-value-quantity=gt150", []string{"w"}},
		{"combo-value-quantity:missing=true", []string{"a", "n"}},
		{"combo-value-quantity:missing=false", []string{"bp", "w"}},
		{"combo-value-concept=http://snomed.info/sct|8517006", []string{"a"}},
		{"combo-data-absent-reason=unknown", []string{"a"}},
		{"combo-data-absent-reason:missing=true", []string{"bp", "n", "w"}},
		{"combo-code-value-quantity=http://loinc.org|8462-4$80", []string{"bp"}},
		{"combo-code-value-quantity=29463-7$gt180", []string{"w"}},
		{"combo-code-value-quantity=8480-6$80", nil}, // code and value of different components
		{"combo-code-value-concept=72166-2$8517006", []string{"a"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got := sortedIDs(find(t, reg, s, "Observation", tc.query))
			if want := sortedIDs(tc.want); !slices.Equal(got, want) {
				t.Errorf("Observation?%s = %v, want %v", tc.query, got, want)
			}
		})
	}
	// Ascending by the least code of the Observation and its components
	// (a: 1000-0, bp: 8462-4), descending by the greatest (a: 99990-1);
	// paged one by one, so that the cursor carries the keys.
	for _, tc := range []struct {
		sort string
		want []string
	}{
		{"combo-code", []string{"a", "w", "bp", "n"}},
		{"-combo-code", []string{"a", "n", "bp", "w"}},
	} {
		if got := pageByOne(t, reg, s, "Observation", "_sort="+tc.sort); !slices.Equal(got, tc.want) {
			t.Errorf("_sort=%s paged one by one = %v, want %v", tc.sort, got, tc.want)
		}
	}
}

func testSearchTotal(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s, `{"resourceType":"Patient","id":"a","gender":"male"}`, `{"resourceType":"Patient","id":"b","gender":"male"}`, `{"resourceType":"Patient","id":"c"}`)
	if res := page(t, reg, s, "Patient", "gender=male", "", 1); res.Total != -1 {
		t.Errorf("Total without _total = %d, want -1", res.Total)
	}
	res := page(t, reg, s, "Patient", "gender=male&_total=accurate", "", 1)
	if res.Total != 2 || len(res.Matches) != 1 {
		t.Errorf("_total=accurate: Total %d with %d matches, want 2 with 1", res.Total, len(res.Matches))
	}
	res = page(t, reg, s, "Patient", "_total=accurate", "", 0)
	if res.Total != 3 || len(res.Matches) != 0 {
		t.Errorf("_count=0: Total %d with %d matches, want 3 with 0", res.Total, len(res.Matches))
	}
}

func testSearchInclude(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Organization","id":"org","name":"Acme"}`,
		`{"resourceType":"Practitioner","id":"dr","name":[{"family":"Who"}]}`,
		`{"resourceType":"Patient","id":"p","managingOrganization":{"reference":"Organization/org"},"generalPractitioner":[{"reference":"Practitioner/dr"}]}`,
		`{"resourceType":"Medication","id":"med","code":{"text":"aspirin"}}`,
		`{"resourceType":"MedicationRequest","id":"mr","status":"active","intent":"order","medicationReference":{"reference":"Medication/med"},"subject":{"reference":"Patient/p"}}`,
		`{"resourceType":"Provenance","id":"prov","target":[{"reference":"MedicationRequest/mr"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/dr"}}]}`,
	)
	for _, tc := range []struct {
		typ, query string
		matches    []string
		included   []string
	}{
		{"MedicationRequest", "_include=MedicationRequest:medication", []string{"mr"}, []string{"med"}},
		{"MedicationRequest", "_revinclude=Provenance:target", []string{"mr"}, []string{"prov"}},
		{"MedicationRequest", "_include=MedicationRequest:patient&_include:iterate=Patient:organization", []string{"mr"}, []string{"org", "p"}},
		{"Patient", "_include=*", []string{"p"}, []string{"dr", "org"}},
		{"Patient", "_include=Patient:general-practitioner:Practitioner", []string{"p"}, []string{"dr"}},
		{"Patient", "_revinclude=MedicationRequest:subject&_revinclude:iterate=Provenance:target", []string{"p"}, []string{"mr", "prov"}},
		{"Practitioner", "_revinclude=*", []string{"dr"}, []string{"p", "prov"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			res := run(t, reg, s, tc.typ, tc.query)
			if got := matchIDs(res.Matches); !slices.Equal(got, tc.matches) {
				t.Errorf("matches = %v, want %v", got, tc.matches)
			}
			if got := sortedIDs(matchIDs(res.Included)); !slices.Equal(got, tc.included) {
				t.Errorf("included = %v, want %v", got, tc.included)
			}
		})
	}
}

func testSearchChain(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}`,
		`{"resourceType":"Patient","id":"p2","name":[{"family":"Jones"}]}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1234-5"}]},"subject":{"reference":"Patient/p1"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"9999-9"}]},"subject":{"reference":"Patient/p2"}}`,
	)
	for _, tc := range []struct {
		typ, query string
		want       []string
	}{
		{"Observation", "subject:Patient.name=smith", []string{"o1"}},
		{"Observation", "patient.family=jones", []string{"o2"}},
		{"Observation", "subject.name=nobody", nil},
		{"Patient", "_has:Observation:patient:code=1234-5", []string{"p1"}},
		{"Patient", "_has:Observation:subject:status=final", []string{"p1", "p2"}},
	} {
		if got := sortedIDs(find(t, reg, s, tc.typ, tc.query)); !slices.Equal(got, tc.want) {
			t.Errorf("%s?%s = %v, want %v", tc.typ, tc.query, got, tc.want)
		}
	}
}

func testSearchInTx(t *testing.T, reg *search.Registry, s store.Store) {
	q, _, err := reg.Parse("Patient", url.Values{"identifier": {"urn:x|1"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 2
	err = s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		// Each Patient created is found at once: the second the unit
		// creates too.
		for i, id := range []string{"", "n", "n2"} {
			if id != "" {
				if err := tx.Put(ctx, &store.Version{Type: "Patient", ID: id, VersionID: 1, Method: "POST",
					Body: []byte(`{"resourceType":"Patient","id":"` + id + `","identifier":[{"system":"urn:x","value":"1"}]}`)}); err != nil {
					return err
				}
			}
			res, err := tx.Search(ctx, q)
			if err != nil {
				return err
			}
			if got, want := matchIDs(res.Matches), []string{"n", "n2"}[:i]; !slices.Equal(got, want) {
				t.Errorf("after %d writes, in the unit of work: %v, want %v", i, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A chain and a _has read the rows of other types: the rows a unit
	// holds of those types are found, though it holds none of the type
	// searched. (A unit writes its first create's rows at once.)
	for _, tt := range []struct {
		first, second, query string
		want                 []string
	}{
		{`{"resourceType":"Patient","id":"pc","managingOrganization":{"reference":"Organization/oc"}}`,
			`{"resourceType":"Organization","id":"oc","name":"Held Clinic"}`, "Patient?organization.name=held", []string{"pc"}},
		{`{"resourceType":"Organization","id":"oh"}`,
			`{"resourceType":"Patient","id":"ph","name":[{"family":"Heldson"}],"managingOrganization":{"reference":"Organization/oh"}}`,
			"Organization?_has:Patient:organization:name=heldson", []string{"oh"}},
	} {
		typ, query, _ := strings.Cut(tt.query, "?")
		vals, _ := url.ParseQuery(query)
		q, _, err := reg.Parse(typ, vals, true)
		if err != nil {
			t.Fatal(err)
		}
		q.Count = 10
		err = s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
			if err := createIn(ctx, tx, tt.first, tt.second); err != nil {
				return err
			}
			res, err := tx.Search(ctx, q)
			if err != nil {
				return err
			}
			if got := matchIDs(res.Matches); !slices.Equal(got, tt.want) {
				t.Errorf("%s in the unit of work: %v, want %v", tt.query, got, tt.want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// A resource created and changed, or created and deleted, in one unit
	// of work has the index rows of its last version (the store holds the
	// rows of the resources a unit creates after its first until it ends
	// or searches).
	err = s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, v := range []*store.Version{
			{Type: "Observation", ID: "gone", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Observation","id":"gone","status":"preliminary","code":{"text":"x"},"subject":{"reference":"Patient/n"}}`)},
			{Type: "Observation", ID: "changed", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Observation","id":"changed","status":"preliminary","code":{"text":"x"},"subject":{"reference":"Patient/n"}}`)},
			{Type: "Observation", ID: "changed", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Observation","id":"changed","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/m"}}`)},
			{Type: "Observation", ID: "gone", VersionID: 2, Method: "DELETE", Deleted: true},
		} {
			if err := tx.Put(ctx, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string][]string{
		"status=preliminary":           nil,
		"status=final":                 {"changed"},
		"patient=n":                    nil,
		"patient=m":                    {"changed"},
		"patient=n&status=preliminary": nil,
		"patient=m&status=final":       {"changed"},
	} {
		if got := find(t, reg, s, "Observation", query); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Errorf("Observation?%s = %v, want %v", query, got, want)
		}
	}
}

func testSearchCompartment(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Patient","id":"p1"}`,
		`{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"}}`,
		`{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p2"}}`,
	)
	for _, typ := range []string{"Patient", "Condition"} {
		q := &search.Query{Type: typ, Count: 10, Where: search.And{search.Compartment{Patient: "p1"}}}
		res, err := s.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"Patient": {"p1"}, "Condition": {"c1"}}[typ]
		if got := matchIDs(res.Matches); !slices.Equal(got, want) {
			t.Errorf("%s in the compartment of p1 = %v, want %v", typ, got, want)
		}
	}
	// A Group is in the compartment of every member: more rows than one
	// statement may carry parameters for.
	var members []string
	for i := range 20000 {
		members = append(members, fmt.Sprintf(`{"entity":{"reference":"Patient/m%d"}}`, i))
	}
	create(t, s, `{"resourceType":"Group","id":"big","type":"person","actual":true,"member":[`+strings.Join(members, ",")+`]}`)
	for _, p := range []string{"m0", "m19999"} {
		res, err := s.Search(context.Background(), &search.Query{Type: "Group", Count: 10, Where: search.And{search.Compartment{Patient: p}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := matchIDs(res.Matches); !slices.Equal(got, []string{"big"}) {
			t.Errorf("Groups in the compartment of %s = %v, want [big]", p, got)
		}
	}
}

// testManyCreates: a unit of work that creates many resources, as a
// Bundle does (on PostgreSQL their rows wait, under rids reserved ahead,
// with the index rows: sqlstore's holdCreate), sees each of them in
// Current, in Search and when it updates one, and keeps them all; one
// create whose id is taken fails the whole unit with a Conflict and
// leaves nothing of it.
func testManyCreates(t *testing.T, reg *search.Registry, s store.Store) {
	ctx := context.Background()
	create(t, s, `{"resourceType":"Observation","id":"taken","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]},"subject":{"reference":"Patient/q"}}`)
	obs := func(id string, version int64) []byte {
		return []byte(`{"resourceType":"Observation","id":"` + id + `","status":"` + []string{"", "final", "amended"}[version] +
			`","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/p"}}`)
	}
	search := func(tx store.Tx, query string) []string {
		t.Helper()
		params, err := url.ParseQuery(query + "&_count=500")
		if err != nil {
			t.Fatal(err)
		}
		q, _, err := reg.Parse("Observation", params, true)
		if err != nil {
			t.Fatal(err)
		}
		var res *store.SearchResult
		if tx != nil {
			res, err = tx.Search(ctx, q)
		} else {
			res, err = s.Search(ctx, q)
		}
		if err != nil {
			t.Fatalf("Observation?%s: %v", query, err)
		}
		return sortedIDs(matchIDs(res.Matches))
	}
	const n = 150
	var ids []string
	err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range n {
			id := fmt.Sprintf("o%03d", i)
			ids = append(ids, id)
			if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: id, VersionID: 1, Method: "POST", Body: obs(id, 1)}); err != nil {
				return err
			}
			switch i {
			case 40:
				if cur, err := tx.Current(ctx, "Observation", "o039"); err != nil || cur.VersionID != 1 {
					t.Errorf("Current(o039) in the unit of work: %v, %v; want version 1", cur, err)
				}
			case 80:
				if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: "o079", VersionID: 2, Method: "PUT", Body: obs("o079", 2)}); err != nil {
					return err
				}
			case 120:
				if got := search(tx, "patient=p&code=2339-0"); !slices.Equal(got, ids) {
					t.Errorf("Search in the unit of work after %d creates found %d: %v", len(ids), len(got), got)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	for _, id := range ids {
		v, err := s.Read(ctx, "Observation", id)
		want := int64(1)
		if id == "o079" {
			want = 2
		}
		if err != nil || v.VersionID != want || !bytes.Equal(v.Body, obs(id, want)) {
			t.Fatalf("Read(%s) = %v, %v; want version %d", id, v, err, want)
		}
	}
	if got := search(nil, "patient=p&code=2339-0"); !slices.Equal(got, ids) {
		t.Errorf("Observation?patient=p&code=2339-0 found %d of %d: %v", len(got), len(ids), got)
	}
	if got := search(nil, "patient=p&status=amended"); !slices.Equal(got, []string{"o079"}) {
		t.Errorf("Observation?patient=p&status=amended = %v, want [o079]", got)
	}

	err = s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{"x1", "x2", "taken", "x3"} {
			if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: id, VersionID: 1, Method: "POST", Body: obs(id, 1)}); err != nil {
				return err
			}
		}
		return nil
	})
	if !fhir.IsCode(err, fhir.Conflict) || !strings.Contains(err.Error(), "Observation/taken") {
		t.Fatalf("a unit creating a taken id: %v, want a Conflict naming Observation/taken", err)
	}
	for _, id := range []string{"x1", "x2", "x3"} {
		if _, err := s.Read(ctx, "Observation", id); !fhir.IsCode(err, fhir.NotFound) {
			t.Errorf("Read(%s) after the failed unit: %v, want NotFound", id, err)
		}
	}
	if v, err := s.Read(ctx, "Observation", "taken"); err != nil || v.VersionID != 1 || !bytes.Contains(v.Body, []byte("Patient/q")) {
		t.Errorf("Read(taken) after the failed unit: %v, %v; want its version 1", v, err)
	}
}
