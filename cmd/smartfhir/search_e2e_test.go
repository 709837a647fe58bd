package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhir/spec"
	"smartfhir/internal/fhirpath"
)

// TestUSCoreSearches loads the Inferno US Core patients and runs every
// SHALL search and SHALL search combination of the US Core 6.1.0 server
// CapabilityStatement with values taken from the data (system|code and
// code tokens, several values OR'ed, patient=Patient/{id}, dates with and
// without the gt ge lt le prefixes, string prefixes), by GET and by POST
// _search, plus the _revinclude=Provenance:target and
// _include=...:medication includes it names. Each answer is compared with
// a brute-force evaluation in this test over every loaded resource: the
// SearchParameter's FHIRPath gives the values, and the matching rules of
// R4 search.html are applied here, independently of internal/search.
func TestUSCoreSearches(t *testing.T) {
	data := e2eUsCoreData(t)
	cs := e2eUsCoreServerCapabilities(t, data)
	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		srv := startServer(t, dbArgs...)
		base := srv.BaseURL + "/fhir"
		e2eLoadInferno(t, base, filepath.Join(data, "inferno-us-core", "resources"))
		all := e2eCurrentResources(t, base)
		if n := len(all["Patient"]); n < 5 {
			t.Fatalf("%d patients loaded, want the Inferno set", n)
		}
		queries := 0
		for _, r := range cs {
			searches := r.combinations
			for _, p := range r.shall {
				searches = append(searches, []string{p})
			}
			searches = append(searches, e2eUnionSearches[r.typ]...)
			for _, params := range searches {
				for _, q := range e2eSearchCases(t, r.typ, params, all) {
					queries++
					got := e2eRunSearch(t, base, r.typ, q, queries%5 == 0)
					want := e2eBruteForce(t, r.typ, q, all)
					if !slices.Equal(got, want) {
						t.Errorf("%s?%s: got %d, want %d\n got %v\nwant %v\ndifference: %s", r.typ, q.Encode(), len(got), len(want), got, want, e2eDescribe(t, r.typ, q, got, want, all))
					}
				}
			}
			for _, inc := range r.revIncludes {
				e2eCheckRevInclude(t, base, r.typ, inc, all)
			}
			for _, inc := range r.includes {
				e2eCheckInclude(t, base, r.typ, inc, all)
			}
		}
		if queries < 100 {
			t.Errorf("only %d searches were run; the data should give far more", queries)
		}
		t.Logf("%d searches compared", queries)
	})
}

// e2eUnionSearches go beyond US Core: Observation's token parameters that
// are unions of two others (combo-code is code and component-code) have no
// index rows of their own and are answered from their members' rows
// (internal/search/union.go). The brute force reads their own expressions.
var e2eUnionSearches = map[string][][]string{
	"Observation": {
		{"combo-code"}, {"patient", "combo-code"},
		{"combo-value-concept"}, {"patient", "combo-data-absent-reason"},
	},
}

func e2eUsCoreData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test directory: cannot find ../shared/data")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(data, "inferno-us-core", "resources")); err != nil {
		t.Skipf("the Inferno US Core data is not at %s: %v", data, err)
	}
	return data
}

type e2eCsResource struct {
	typ                   string
	shall                 []string
	combinations          [][]string
	includes, revIncludes []string
}

// usCoreServerCapabilities reads the SHALL searches of the US Core 6.1.0
// server CapabilityStatement.
func e2eUsCoreServerCapabilities(t *testing.T, data string) []e2eCsResource {
	f, err := os.Open(filepath.Join(data, "us-core", "hl7.fhir.us.core-6.1.0.tgz"))
	if err != nil {
		t.Skipf("US Core package: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var raw []byte
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("CapabilityStatement-us-core-server.json not found: %v", err)
		}
		if h.Name == "package/CapabilityStatement-us-core-server.json" {
			raw, _ = io.ReadAll(tr)
			break
		}
	}
	type ext struct {
		URL         string `json:"url"`
		ValueCode   string `json:"valueCode"`
		ValueString string `json:"valueString"`
		Extension   []ext  `json:"extension"`
	}
	var doc struct {
		Rest []struct {
			Resource []struct {
				Type        string   `json:"type"`
				Extension   []ext    `json:"extension"`
				Include     []string `json:"searchInclude"`
				RevInclude  []string `json:"searchRevInclude"`
				SearchParam []struct {
					Name      string `json:"name"`
					Extension []ext  `json:"extension"`
				} `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	shall := func(es []ext) bool {
		for _, e := range es {
			if strings.HasSuffix(e.URL, "capabilitystatement-expectation") && e.ValueCode == "SHALL" {
				return true
			}
		}
		return false
	}
	var out []e2eCsResource
	for _, r := range doc.Rest[0].Resource {
		c := e2eCsResource{typ: r.Type, includes: r.Include, revIncludes: r.RevInclude}
		for _, p := range r.SearchParam {
			if shall(p.Extension) {
				c.shall = append(c.shall, p.Name)
			}
		}
		for _, e := range r.Extension {
			if !strings.HasSuffix(e.URL, "search-parameter-combination") || !shall(e.Extension) {
				continue
			}
			var req []string
			for _, x := range e.Extension {
				if x.URL == "required" {
					req = append(req, x.ValueString)
				}
			}
			c.combinations = append(c.combinations, req)
		}
		out = append(out, c)
	}
	return out
}

// loadInferno posts the transaction Bundles. Patient 355's Bundle holds one
// Observation with an element R4 does not have (effectivePeriod.stop); it
// is loaded without that entry.
func e2eLoadInferno(t *testing.T, base, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc["resourceType"] != "Bundle" {
			url := fmt.Sprintf("%s/%s/%s", base, doc["resourceType"], doc["id"])
			if status, body := e2eCall(t, http.MethodPut, url, raw); status >= 300 {
				t.Fatalf("PUT %s: %d %s", filepath.Base(f), status, body)
			}
			continue
		}
		entries, _ := doc["entry"].([]any)
		kept := entries[:0]
		for _, e := range entries {
			res, _ := e.(map[string]any)["resource"].(map[string]any)
			if p, ok := res["effectivePeriod"].(map[string]any); ok && p["stop"] != nil {
				continue
			}
			kept = append(kept, e)
		}
		doc["entry"] = kept
		body, _ := json.Marshal(doc)
		if status, out := e2eCall(t, http.MethodPost, base, body); status != http.StatusOK {
			t.Fatalf("POST %s: %d %s", filepath.Base(f), status, out)
		}
	}
}

func e2eCall(t *testing.T, method, u string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

type e2eBundleDoc struct {
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource map[string]any `json:"resource"`
		Search   struct {
			Mode string `json:"mode"`
		} `json:"search"`
		Request struct {
			Method string `json:"method"`
		} `json:"request"`
	} `json:"entry"`
}

func (b e2eBundleDoc) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

func e2eGetJSON(t *testing.T, u string) e2eBundleDoc {
	t.Helper()
	status, body := e2eCall(t, http.MethodGet, u, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	var b e2eBundleDoc
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// currentResources reads every current resource from the system history,
// which does not involve search: type → id → resource.
func e2eCurrentResources(t *testing.T, base string) map[string]map[string]map[string]any {
	all := map[string]map[string]map[string]any{}
	seen := map[string]bool{}
	for u := base + "/_history?_count=1000"; u != ""; {
		b := e2eGetJSON(t, u)
		for _, e := range b.Entry { // newest first: the first seen is current
			r := e.Resource
			if r == nil {
				continue // a deletion
			}
			typ, id := r["resourceType"].(string), r["id"].(string)
			if seen[typ+"/"+id] {
				continue
			}
			seen[typ+"/"+id] = true
			if all[typ] == nil {
				all[typ] = map[string]map[string]any{}
			}
			all[typ][id] = r
		}
		u = b.next()
	}
	return all
}

// runSearch runs a search by GET (or POST _search) following next links
// and returns the sorted ids of the matches.
func e2eRunSearch(t *testing.T, base, typ string, q url.Values, post bool) []string {
	t.Helper()
	var ids []string
	var b e2eBundleDoc
	if post {
		req, _ := http.NewRequest(http.MethodPost, base+"/"+typ+"/_search", strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s/_search %s: %d %s", typ, q.Encode(), resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
	} else {
		b = e2eGetJSON(t, base+"/"+typ+"?"+q.Encode())
	}
	for {
		for _, e := range b.Entry {
			if e.Search.Mode == "outcome" {
				t.Errorf("%s?%s: an outcome entry: %v", typ, q.Encode(), e.Resource)
			}
			if e.Search.Mode == "match" {
				ids = append(ids, e.Resource["id"].(string))
			}
		}
		next := b.next()
		if next == "" {
			break
		}
		b = e2eGetJSON(t, next)
	}
	sort.Strings(ids)
	return ids
}

// ---- the brute-force side ----

// paramDef is the SearchParameter a server following US Core uses for a
// code: US Core's own where it defines one, else the core one.
func e2eParamDef(t *testing.T, typ, code string) spec.SearchParam {
	for _, sp := range spec.USCoreSearchParams() {
		if sp.Code == code && slices.Contains(sp.Base, typ) {
			return sp
		}
	}
	for _, sp := range spec.SearchParamsFor(typ) {
		if sp.Code == code {
			return sp
		}
	}
	t.Fatalf("no search parameter %s on %s", code, typ)
	return spec.SearchParam{}
}

var e2eBfEnv = fhirpath.Env{Types: fhirpath.SpecTypes}

func e2eValues(t *testing.T, sp spec.SearchParam, r map[string]any) []fhirpath.Node {
	if sp.Code == "_id" {
		return []fhirpath.Node{{Value: r["id"], Type: "id"}}
	}
	nodes, err := fhirpath.MustCompile(sp.Expression).Evaluate(r, e2eBfEnv)
	if err != nil {
		return nil
	}
	return nodes
}

type e2ePair struct{ system, code string }

func e2eTokens(n fhirpath.Node) []e2ePair {
	switch v := n.Value.(type) {
	case string:
		return []e2ePair{{"", v}}
	case bool:
		return []e2ePair{{"", fmt.Sprint(v)}}
	case map[string]any:
		s, _ := v["system"].(string)
		switch n.Type {
		case "Identifier":
			c, _ := v["value"].(string)
			return []e2ePair{{s, c}}
		case "Coding":
			c, _ := v["code"].(string)
			return []e2ePair{{s, c}}
		}
		var out []e2ePair
		list, _ := v["coding"].([]any)
		for _, c := range list {
			m := c.(map[string]any)
			s, _ := m["system"].(string)
			code, _ := m["code"].(string)
			out = append(out, e2ePair{s, code})
		}
		return out
	}
	return nil
}

func e2eStrs(n fhirpath.Node) []string {
	switch v := n.Value.(type) {
	case string:
		return []string{v}
	case map[string]any:
		var out []string
		for _, k := range []string{"family", "given", "prefix", "suffix", "text", "line", "city", "district", "state", "postalCode", "country"} {
			switch x := v[k].(type) {
			case string:
				out = append(out, x)
			case []any:
				for _, s := range x {
					out = append(out, s.(string))
				}
			}
		}
		return out
	}
	return nil
}

// dateRange is the [low, high) of a date value in Unix microseconds.
func e2eBfRange(n fhirpath.Node) (lo, hi int64, ok bool) {
	one := func(s string) (int64, int64, bool) {
		d, err := fhir.ParseDateTime(s)
		if err != nil {
			return 0, 0, false
		}
		l, h := d.Range()
		return l.UnixMicro(), h.UnixMicro(), true
	}
	switch v := n.Value.(type) {
	case string:
		return one(v)
	case map[string]any:
		if n.Type != "Period" {
			return 0, 0, false
		}
		lo, hi = -1<<63, 1<<63-1
		if s, ok := v["start"].(string); ok {
			if lo, _, ok = one(s); !ok {
				return 0, 0, false
			}
		}
		if e, ok := v["end"].(string); ok {
			if _, hi, ok = one(e); !ok {
				return 0, 0, false
			}
		}
		return lo, hi, true
	}
	return 0, 0, false
}

// matchValue applies one search value to one resource value (R4
// search.html, per parameter type).
func e2eMatchValue(sp spec.SearchParam, value string, n fhirpath.Node) bool {
	switch sp.Type {
	case "token":
		for _, p := range e2eTokens(n) {
			if sys, code, ok := strings.Cut(value, "|"); ok {
				if p.system == sys && p.code == code {
					return true
				}
			} else if p.code == value {
				return true
			}
		}
	case "reference":
		m, _ := n.Value.(map[string]any)
		ref, _ := m["reference"].(string)
		return ref == value || strings.HasSuffix(ref, "/"+value) || (!strings.Contains(value, "/") && strings.HasSuffix(ref, "/"+value))
	case "string":
		for _, s := range e2eStrs(n) {
			if strings.HasPrefix(strings.ToLower(s), strings.ToLower(value)) {
				return true
			}
		}
	case "date":
		prefix := "eq"
		if len(value) > 2 && value[0] >= 'a' {
			prefix, value = value[:2], value[2:]
		}
		d, err := fhir.ParseDateTime(value)
		if err != nil {
			return false
		}
		l, h := d.Range()
		pl, ph := l.UnixMicro(), h.UnixMicro()
		rl, rh, ok := e2eBfRange(n)
		if !ok {
			return false
		}
		within := rl >= pl && rh <= ph
		switch prefix {
		case "eq":
			return within
		case "gt":
			return rh > ph
		case "lt":
			return rl < pl
		case "ge":
			return rh > ph || within
		case "le":
			return rl < pl || within
		}
	}
	return false
}

func e2eBruteForce(t *testing.T, typ string, q url.Values, all map[string]map[string]map[string]any) []string {
	var out []string
	for id, r := range all[typ] {
		ok := true
		for code, vals := range q {
			sp := e2eParamDef(t, typ, code)
			for _, v := range vals { // AND
				any := false
				for _, alt := range strings.Split(v, ",") { // OR
					for _, n := range e2eValues(t, sp, r) {
						if sp.Code == "_id" {
							if n.Value == alt {
								any = true
							}
						} else if e2eMatchValue(sp, alt, n) {
							any = true
						}
					}
				}
				ok = ok && any
			}
		}
		if ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// searchCases makes queries for a search from the data: for up to six
// resources of the type, the values of each parameter in that resource,
// in the forms US Core asks servers to support.
func e2eSearchCases(t *testing.T, typ string, params []string, all map[string]map[string]map[string]any) []url.Values {
	ids := make([]string, 0, len(all[typ]))
	for id := range all[typ] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []url.Values
	for i, id := range ids {
		if i >= 6 {
			break
		}
		r := all[typ][id]
		variants := []url.Values{{}}
		for _, code := range params {
			sp := e2eParamDef(t, typ, code)
			forms := e2eValueForms(t, sp, r, all[typ])
			if len(forms) == 0 {
				variants = nil
				break
			}
			var next []url.Values
			for _, v := range variants {
				for _, f := range forms {
					c := url.Values{}
					for k, x := range v {
						c[k] = x
					}
					c.Set(code, f)
					next = append(next, c)
				}
			}
			variants = next
		}
		out = append(out, variants...)
	}
	return out
}

// valueForms are the search values for parameter sp taken from r.
func e2eValueForms(t *testing.T, sp spec.SearchParam, r map[string]any, same map[string]map[string]any) []string {
	nodes := e2eValues(t, sp, r)
	if len(nodes) == 0 {
		return nil
	}
	n := nodes[0]
	switch sp.Type {
	case "token":
		if sp.Code == "_id" {
			return []string{r["id"].(string)}
		}
		ps := e2eTokens(n)
		if len(ps) == 0 || ps[0].code == "" {
			return nil
		}
		p := ps[0]
		forms := []string{p.code}
		if p.system != "" {
			forms = append(forms, p.system+"|"+p.code)
		}
		// multipleOr: this code or another resource's.
		for _, o := range same {
			for _, on := range e2eValues(t, sp, o) {
				if ops := e2eTokens(on); len(ops) > 0 && ops[0].code != p.code && ops[0].code != "" && !strings.Contains(ops[0].code, ",") {
					return append(forms, p.code+","+ops[0].code)
				}
			}
		}
		return forms
	case "reference":
		m, _ := n.Value.(map[string]any)
		ref, _ := m["reference"].(string)
		if ref == "" {
			return nil
		}
		forms := []string{ref}
		if typ, id, ok := strings.Cut(ref, "/"); ok && typ == "Patient" {
			forms = append(forms, id)
		}
		return forms
	case "string":
		ss := e2eStrs(n)
		if len(ss) == 0 || len(ss[0]) < 3 {
			return nil
		}
		return []string{ss[0][:3], strings.ToUpper(ss[0])}
	case "date":
		var s string
		switch v := n.Value.(type) {
		case string:
			s = v
		case map[string]any:
			s, _ = v["start"].(string)
			if s == "" {
				s, _ = v["end"].(string)
			}
		}
		if s == "" {
			return nil
		}
		forms := []string{s}
		if len(s) > 10 { // a full dateTime with its offset
			forms = append(forms, "gt"+s, "ge"+s, "lt"+s, "le"+s)
		} else {
			forms = append(forms, "ge"+s, "lt"+s)
		}
		return forms
	}
	return nil
}

// checkRevInclude runs typ?patient=…&_revinclude=Provenance:target for a
// few patients and checks the included Provenances against the data.
func e2eCheckRevInclude(t *testing.T, base, typ, inc string, all map[string]map[string]map[string]any) {
	src, param, _ := strings.Cut(inc, ":")
	pids := slices.Sorted(func(yield func(string) bool) {
		for id := range all["Patient"] {
			if !yield(id) {
				return
			}
		}
	})
	for _, pid := range pids[:min(3, len(pids))] {
		q := url.Values{"_revinclude": {inc}, "_count": {"1000"}}
		if typ == "Patient" {
			q.Set("_id", pid)
		} else if slices.ContainsFunc(spec.SearchParamsFor(typ), func(sp spec.SearchParam) bool { return sp.Code == "patient" }) {
			q.Set("patient", "Patient/"+pid)
		} else {
			return
		}
		b := e2eGetJSON(t, base+"/"+typ+"?"+q.Encode())
		matched := map[string]bool{}
		var got []string
		for _, e := range b.Entry {
			id := e.Resource["id"].(string)
			switch e.Search.Mode {
			case "match":
				matched[typ+"/"+id] = true
			case "include":
				got = append(got, e.Resource["resourceType"].(string)+"/"+id)
			}
		}
		var want []string
		sp := e2eParamDef(t, src, param)
		for id, r := range all[src] {
			for _, n := range e2eValues(t, sp, r) {
				m, _ := n.Value.(map[string]any)
				ref, _ := m["reference"].(string)
				if matched[ref] {
					want = append(want, src+"/"+id)
					break
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s?%s included %v, want %v", typ, q.Encode(), got, want)
		}
	}
}

// checkInclude runs typ?_include=… over all resources of typ and checks
// the included resources against the references in the matches.
func e2eCheckInclude(t *testing.T, base, typ, inc string, all map[string]map[string]map[string]any) {
	parts := strings.Split(inc, ":")
	sp := e2eParamDef(t, typ, parts[1])
	q := url.Values{"_include": {inc}, "_count": {"1000"}}
	b := e2eGetJSON(t, base+"/"+typ+"?"+q.Encode())
	var got []string
	want := map[string]bool{}
	for _, e := range b.Entry {
		switch e.Search.Mode {
		case "match":
			for _, n := range e2eValues(t, sp, e.Resource) {
				m, _ := n.Value.(map[string]any)
				ref, _ := m["reference"].(string)
				rt, id, ok := strings.Cut(ref, "/")
				if !ok || (len(parts) == 3 && rt != parts[2]) {
					continue
				}
				if _, exists := all[rt][id]; exists && rt != typ {
					want[ref] = true
				}
			}
		case "include":
			got = append(got, e.Resource["resourceType"].(string)+"/"+e.Resource["id"].(string))
		}
	}
	wantList := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	sort.Strings(got)
	if !slices.Equal(got, wantList) {
		t.Errorf("%s?%s included %v, want %v", typ, q.Encode(), got, wantList)
	}
}

// e2eDescribe shows the parameter values of the resources one side has and
// the other lacks.
func e2eDescribe(t *testing.T, typ string, q url.Values, got, want []string, all map[string]map[string]map[string]any) string {
	var b strings.Builder
	for _, id := range append(slices.Clone(got), want...) {
		if slices.Contains(got, id) == slices.Contains(want, id) {
			continue
		}
		fmt.Fprintf(&b, "\n  %s/%s:", typ, id)
		for code := range q {
			for _, n := range e2eValues(t, e2eParamDef(t, typ, code), all[typ][id]) {
				fmt.Fprintf(&b, " %s=%v", code, n.Value)
			}
		}
	}
	return b.String()
}
