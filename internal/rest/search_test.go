package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"smartfhir/internal/rest"
)

func newSearchServer(t *testing.T) string {
	t.Helper()
	cfg := rest.Config{
		Store: newMemStore(), Validator: testValidator{}, ResourceTypes: types, NewID: newID,
		MaxBodyBytes: 1 << 20, DefaultCount: 2, MaxCount: 3, Search: testRegistry(),
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg.Base = srv.URL + "/fhir"
	api := rest.New(cfg)
	mux.Handle("/fhir/", api)
	for _, p := range []string{
		`{"resourceType":"Patient","gender":"male","name":[{"family":"Alpha"}]}`,
		`{"resourceType":"Patient","gender":"male","name":[{"family":"Beta"}]}`,
		`{"resourceType":"Patient","gender":"male","name":[{"family":"Gamma"}]}`,
		`{"resourceType":"Patient","gender":"female","name":[{"family":"Delta"}]}`,
	} {
		resp := do(t, http.MethodPost, cfg.Base+"/Patient", p, "Content-Type", "application/fhir+json")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d", resp.StatusCode)
		}
	}
	return cfg.Base
}

type searchBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        *int   `json:"total"`
	Link         []struct {
		Relation, URL string
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   struct{ Mode string }
	} `json:"entry"`
}

func (b searchBundle) link(rel string) string {
	for _, l := range b.Link {
		if l.Relation == rel {
			return l.URL
		}
	}
	return ""
}

// families are the family names of the match entries.
func (b searchBundle) families(t *testing.T) []string {
	var out []string
	for _, e := range b.Entry {
		if e.Search.Mode != "match" {
			continue
		}
		var p struct{ Name []struct{ Family string } }
		if err := json.Unmarshal(e.Resource, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Name[0].Family)
	}
	return out
}

func getBundle(t *testing.T, method, u, form string, hdr ...string) (int, searchBundle) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var b searchBundle
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return resp.StatusCode, b
}

func TestSearchGetAndPostAgree(t *testing.T) {
	base := newSearchServer(t)
	_, get := getBundle(t, http.MethodGet, base+"/Patient?gender=male&_total=accurate", "")
	_, post := getBundle(t, http.MethodPost, base+"/Patient/_search", "gender=male&_total=accurate")
	if get.Type != "searchset" || get.Total == nil || *get.Total != 3 {
		t.Fatalf("GET: type %q total %v, want searchset with total 3", get.Type, get.Total)
	}
	if g, p := get.families(t), post.families(t); !slices.Equal(g, p) || len(g) != 2 {
		t.Errorf("GET matches %v, POST matches %v; want the same first page of 2", g, p)
	}
}

func TestSearchPagingLinks(t *testing.T) {
	base := newSearchServer(t)
	var got []string
	u := base + "/Patient?gender=male"
	for pages := 0; u != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		status, b := getBundle(t, http.MethodGet, u, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", u, status)
		}
		if self := b.link("self"); !strings.HasPrefix(self, base+"/Patient?") {
			t.Errorf("self link %q is not absolute on the base", self)
		}
		got = append(got, b.families(t)...)
		u = b.link("next")
		if pages == 1 && b.link("previous") == "" {
			t.Error("the second page has no previous link")
		}
	}
	if want := []string{"Alpha", "Beta", "Gamma"}; !slices.Equal(got, want) {
		t.Errorf("pages = %v, want %v", got, want)
	}
}

func TestSearchCountIsCapped(t *testing.T) {
	base := newSearchServer(t)
	_, b := getBundle(t, http.MethodGet, base+"/Patient?_count=50", "")
	if n := len(b.families(t)); n != 3 {
		t.Errorf("_count=50 with MaxCount 3 gave %d matches, want 3", n)
	}
	_, b = getBundle(t, http.MethodGet, base+"/Patient?_summary=count", "")
	if b.Total == nil || *b.Total != 4 || len(b.Entry) != 0 {
		t.Errorf("_summary=count: total %v with %d entries, want 4 with none", b.Total, len(b.Entry))
	}
}

func TestSearchUnknownParameter(t *testing.T) {
	base := newSearchServer(t)
	status, b := getBundle(t, http.MethodGet, base+"/Patient?gender=female&nonsense=1", "")
	if status != http.StatusOK {
		t.Fatalf("lenient: status %d, want 200", status)
	}
	last := b.Entry[len(b.Entry)-1]
	if last.Search.Mode != "outcome" || !strings.Contains(string(last.Resource), "nonsense") {
		t.Errorf("last entry = %s (%s), want an outcome naming the parameter", last.Resource, last.Search.Mode)
	}
	if self := b.link("self"); strings.Contains(self, "nonsense") {
		t.Errorf("self link %q keeps the ignored parameter", self)
	}
	if got := b.families(t); !slices.Equal(got, []string{"Delta"}) {
		t.Errorf("matches = %v, want [Delta]", got)
	}
	status, _ = getBundle(t, http.MethodGet, base+"/Patient?gender=female&nonsense=1", "", "Prefer", "handling=strict")
	if status != http.StatusBadRequest {
		t.Errorf("strict: status %d, want 400", status)
	}
	status, _ = getBundle(t, http.MethodGet, base+"/Patient?birthdate=notadate", "")
	if status != http.StatusBadRequest {
		t.Errorf("bad date: status %d, want 400", status)
	}
}

func TestSearchElementsAndSummary(t *testing.T) {
	base := newSearchServer(t)
	for _, tc := range []struct {
		query  string
		has    []string
		hasNot []string
	}{
		{"_elements=gender", []string{`"gender"`, "SUBSETTED"}, []string{`"name"`}},
		{"_summary=true", []string{`"gender"`, `"name"`, "SUBSETTED"}, nil},
		{"_summary=data", []string{`"gender"`}, []string{`"text"`}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			_, b := getBundle(t, http.MethodGet, base+"/Patient?gender=female&"+tc.query, "")
			if len(b.Entry) != 1 {
				t.Fatalf("%d entries, want 1", len(b.Entry))
			}
			body := string(b.Entry[0].Resource)
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("%s lacks %s", body, s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("%s has %s", body, s)
				}
			}
		})
	}
	if _, err := url.Parse(base); err != nil {
		t.Fatal(err)
	}
}

func TestCapabilityStatementSearch(t *testing.T) {
	base := newSearchServer(t)
	resp, err := http.Get(base + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cs struct {
		Instantiates []string
		Rest         []struct {
			Resource []struct {
				Type             string
				SupportedProfile []string
				SearchInclude    []string
				SearchRevInclude []string
				SearchParam      []struct{ Name, Definition, Type string }
				// The conditional interactions this server answers
				// (conditional_ops.go, read.go).
				ConditionalCreate, ConditionalUpdate bool
				ConditionalRead, ConditionalDelete   string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cs.Instantiates, "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|6.1.0") {
		t.Errorf("instantiates = %v, want us-core-server 6.1.0", cs.Instantiates)
	}
	for _, r := range cs.Rest[0].Resource {
		if r.Type != "Observation" {
			continue
		}
		var names []string
		for _, p := range r.SearchParam {
			names = append(names, p.Name)
		}
		for _, want := range []string{"_id", "_lastUpdated", "patient", "category", "code", "date", "code-value-quantity"} {
			if !slices.Contains(names, want) {
				t.Errorf("Observation searchParam lacks %s", want)
			}
		}
		if !slices.Contains(r.SupportedProfile, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab") {
			t.Errorf("Observation supportedProfile lacks us-core-observation-lab: %v", r.SupportedProfile)
		}
		if !slices.Contains(r.SearchRevInclude, "Provenance:target") {
			t.Errorf("Observation searchRevInclude lacks Provenance:target")
		}
		if !r.ConditionalCreate || !r.ConditionalUpdate || r.ConditionalDelete != "multiple" || r.ConditionalRead != "full-support" {
			t.Errorf("Observation conditional create %v, update %v, delete %q, read %q; want true, true, multiple, full-support",
				r.ConditionalCreate, r.ConditionalUpdate, r.ConditionalDelete, r.ConditionalRead)
		}
		return
	}
	t.Error("no Observation in the CapabilityStatement")
}
