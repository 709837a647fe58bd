package resttest

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Run checks the FHIR REST API of the server whose FHIR base URL is base
// (no trailing slash). The server must start with an empty database (the
// history and rollback checks count versions of Device, Substance and
// Location, which only their own test writes), serve at least Patient,
// Observation, Device, Substance, Location, Practitioner and Organization,
// search them by identifier (the conditional interactions), and validate incoming
// resources at least as far as rejecting an unknown Patient.gender code.
func Run(t *testing.T, base string) {
	c := &client{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
	t.Run("capabilities", c.testCapabilities)
	t.Run("create", c.testCreate)
	t.Run("read", c.testRead)
	t.Run("update", c.testUpdate)
	t.Run("prefer", c.testPrefer)
	t.Run("vread", c.testVRead)
	t.Run("delete", c.testDelete)
	t.Run("patch", c.testPatch)
	t.Run("content negotiation", c.testNegotiation)
	t.Run("errors", c.testErrors)
	t.Run("history", c.testHistory)
	t.Run("transaction", c.testTransaction)
	t.Run("transaction rollback", c.testTransactionRollback)
	t.Run("bundle validation", c.testBundleValidation)
	t.Run("batch", c.testBatch)
	t.Run("concurrent updates", c.testConcurrency)
	t.Run("conditional", c.testConditional)
}

const patientJSON = `{"resourceType":"Patient","id":"%s","active":true,"name":[{"family":"Chalmers","given":["Peter"]}],"gender":"%s","birthDate":"1974-12-25"}`

func patient(id, gender string) string { return fmt.Sprintf(patientJSON, id, gender) }

var versionedLocation = regexp.MustCompile(`^(.+)/Patient/([A-Za-z0-9\-.]{1,64})/_history/1$`)

func (c *client) testCapabilities(t *testing.T) {
	r := c.do(t, "GET", "metadata", "")
	r.wantStatus(t, 200)
	cs := r.obj(t)
	for _, tc := range []struct{ name, got, want string }{
		{"resourceType", str(cs, "resourceType"), "CapabilityStatement"},
		{"fhirVersion", str(cs, "fhirVersion"), "4.0.1"},
		{"kind", str(cs, "kind"), "instance"},
		{"status", str(cs, "status"), "active"},
		{"implementation.url", str(cs, "implementation", "url"), c.base},
		{"patchFormat", str(cs, "patchFormat", 0), "application/json-patch+json"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if str(cs, "date") == "" || str(cs, "software", "name") == "" {
		t.Errorf("date and software.name must be set: %.300s", r.body)
	}
	var sys []string
	for i := range length(cs, "rest", 0, "interaction") {
		sys = append(sys, str(cs, "rest", 0, "interaction", i, "code"))
	}
	for _, want := range []string{"transaction", "batch", "history-system"} {
		if !contains(sys, want) {
			t.Errorf("rest.interaction = %v, want %s in it", sys, want)
		}
	}
	found := false
	for i := range length(cs, "rest", 0, "resource") {
		res := get(cs, "rest", 0, "resource", i)
		if str(res, "type") != "Patient" {
			continue
		}
		found = true
		var codes []string
		for j := range length(res, "interaction") {
			codes = append(codes, str(res, "interaction", j, "code"))
		}
		for _, want := range []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create"} {
			if !contains(codes, want) {
				t.Errorf("Patient interactions = %v, want %s in it", codes, want)
			}
		}
		if str(res, "versioning") != "versioned" || str(res, "readHistory") != "true" || str(res, "updateCreate") != "true" {
			t.Errorf("Patient versioning/readHistory/updateCreate = %s/%s/%s", str(res, "versioning"), str(res, "readHistory"), str(res, "updateCreate"))
		}
	}
	if !found {
		t.Error("CapabilityStatement does not list Patient")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// create makes a Patient and returns its id.
func (c *client) create(t *testing.T, gender string) (string, *response) {
	t.Helper()
	r := c.do(t, "POST", "Patient", patient("client-chosen", gender))
	r.wantStatus(t, 201)
	m := versionedLocation.FindStringSubmatch(r.header.Get("Location"))
	if m == nil || m[1] != c.base {
		t.Fatalf("Location = %q, want %s/Patient/{id}/_history/1", r.header.Get("Location"), c.base)
	}
	return m[2], r
}

func (c *client) testCreate(t *testing.T) {
	id, r := c.create(t, "male")
	if id == "client-chosen" {
		t.Error("create kept the id of the body; the server must assign it")
	}
	if got := r.header.Get("ETag"); got != `W/"1"` {
		t.Errorf("ETag = %q, want W/\"1\"", got)
	}
	lm := lastModified(t, r)
	res := r.obj(t)
	if str(res, "id") != id || str(res, "meta", "versionId") != "1" {
		t.Errorf("id, meta.versionId = %q, %q; want %q, 1", str(res, "id"), str(res, "meta", "versionId"), id)
	}
	lu, err := time.Parse(time.RFC3339Nano, str(res, "meta", "lastUpdated"))
	if err != nil {
		t.Fatalf("meta.lastUpdated: %v", err)
	}
	if !lu.Truncate(time.Second).Equal(lm) {
		t.Errorf("Last-Modified %v does not match meta.lastUpdated %v", lm, lu)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type = %q", ct)
	}
	got := c.do(t, "GET", "Patient/"+id, "")
	got.wantStatus(t, 200)
	if string(got.body) != string(r.body) {
		t.Errorf("read body differs from the created one:\n got %s\nwant %s", got.body, r.body)
	}

	t.Run("body id is ignored even when taken", func(t *testing.T) {
		r := c.do(t, "POST", "Patient", patient(id, "female"))
		r.wantStatus(t, 201)
		if strings.Contains(r.header.Get("Location"), "/Patient/"+id+"/") {
			t.Errorf("Location %q reuses the body's id", r.header.Get("Location"))
		}
	})
	t.Run("resourceType must match the URL", func(t *testing.T) {
		c.do(t, "POST", "Observation", patient("x", "male")).wantOutcome(t, 400)
	})
	t.Run("invalid resource is 400 with the validator's issues", func(t *testing.T) {
		issues := c.do(t, "POST", "Patient", patient("x", "bogus")).wantOutcome(t, 400)
		if !c.hasIssueAbout(issues, "gender") {
			t.Errorf("issues do not mention gender: %s", mustJSON(issues))
		}
	})
	t.Run("malformed JSON is 400", func(t *testing.T) {
		c.do(t, "POST", "Patient", `{"resourceType":"Patient",`).wantOutcome(t, 400)
	})
}

func (c *client) testRead(t *testing.T) {
	id, created := c.create(t, "female")
	lm := lastModified(t, created)
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"plain read", nil, 200},
		{"If-None-Match current version", []string{"If-None-Match", `W/"1"`}, 304},
		{"If-None-Match star", []string{"If-None-Match", `*`}, 304},
		{"If-None-Match other version", []string{"If-None-Match", `W/"2"`}, 200},
		{"If-Modified-Since later", []string{"If-Modified-Since", lm.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"If-Modified-Since same second", []string{"If-Modified-Since", lm.Format(http.TimeFormat)}, 304},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", lm.Add(-time.Hour).Format(http.TimeFormat)}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(t, "GET", "Patient/"+id, "", tt.hdr...)
			r.wantStatus(t, tt.status)
			if r.header.Get("ETag") != `W/"1"` {
				t.Errorf("ETag = %q, want W/\"1\"", r.header.Get("ETag"))
			}
			if tt.status == 304 && len(r.body) != 0 {
				t.Errorf("304 with a body: %s", r.body)
			}
		})
	}
	t.Run("_pretty indents", func(t *testing.T) {
		r := c.do(t, "GET", "Patient/"+id+"?_pretty=true", "")
		r.wantStatus(t, 200)
		if !strings.Contains(string(r.body), "\n  \"") {
			t.Errorf("body is not indented: %.200s", r.body)
		}
		if str(r.obj(t), "id") != id {
			t.Errorf("pretty body has the wrong id")
		}
	})
	t.Run("unknown id is 404", func(t *testing.T) { c.do(t, "GET", "Patient/does-not-exist", "").wantOutcome(t, 404) })
	t.Run("unknown type is 404", func(t *testing.T) { c.do(t, "GET", "Nonsense/1", "").wantOutcome(t, 404) })
	t.Run("invalid id is 400", func(t *testing.T) { c.do(t, "GET", "Patient/a_b!c", "").wantOutcome(t, 400) })
	t.Run("HEAD has the headers and no body", func(t *testing.T) {
		r := c.do(t, "HEAD", "Patient/"+id, "")
		r.wantStatus(t, 200)
		if r.header.Get("ETag") != `W/"1"` || len(r.body) != 0 {
			t.Errorf("HEAD: ETag %q, body %d bytes", r.header.Get("ETag"), len(r.body))
		}
	})
}

func (c *client) testUpdate(t *testing.T) {
	id := "upd-" + fmt.Sprint(time.Now().UnixNano())
	r := c.do(t, "PUT", "Patient/"+id, patient(id, "male"))
	r.wantStatus(t, 201)
	if r.header.Get("Location") != c.base+"/Patient/"+id+"/_history/1" {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	r = c.do(t, "PUT", "Patient/"+id, patient(id, "female"))
	r.wantStatus(t, 200)
	if r.header.Get("ETag") != `W/"2"` || str(r.obj(t), "meta", "versionId") != "2" || str(r.obj(t), "gender") != "female" {
		t.Errorf("second update: ETag %q, body %.300s", r.header.Get("ETag"), r.body)
	}
	tests := []struct {
		name, body string
		hdr        []string
		status     int
	}{
		{"body id differs from the URL", patient("other", "male"), nil, 400},
		{"body without id", `{"resourceType":"Patient","gender":"male"}`, nil, 400},
		{"resourceType differs from the URL", `{"resourceType":"Observation","id":"` + id + `"}`, nil, 400},
		{"stale If-Match", patient(id, "male"), []string{"If-Match", `W/"1"`}, 412},
		{"malformed If-Match", patient(id, "male"), []string{"If-Match", `bogus`}, 400},
		{"invalid content", patient(id, "bogus"), nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.do(t, "PUT", "Patient/"+id, tt.body, tt.hdr...).wantOutcome(t, tt.status)
		})
	}
	t.Run("matching If-Match", func(t *testing.T) {
		r := c.do(t, "PUT", "Patient/"+id, patient(id, "other"), "If-Match", `W/"2"`)
		r.wantStatus(t, 200)
		if r.header.Get("ETag") != `W/"3"` {
			t.Errorf("ETag = %q, want W/\"3\"", r.header.Get("ETag"))
		}
	})
	t.Run("failed updates made no version", func(t *testing.T) {
		r := c.do(t, "GET", "Patient/"+id, "")
		if r.header.Get("ETag") != `W/"3"` {
			t.Errorf("ETag = %q, want W/\"3\"", r.header.Get("ETag"))
		}
	})
	t.Run("If-Match on a new resource", func(t *testing.T) {
		c.do(t, "PUT", "Patient/never-"+id, patient("never-"+id, "male"), "If-Match", `W/"1"`).wantOutcome(t, 412)
	})
}

func (c *client) testPrefer(t *testing.T) {
	id := "prefer-" + fmt.Sprint(time.Now().UnixNano())
	r := c.do(t, "PUT", "Patient/"+id, patient(id, "male"), "Prefer", "return=minimal")
	r.wantStatus(t, 201)
	if len(r.body) != 0 || r.header.Get("ETag") != `W/"1"` {
		t.Errorf("return=minimal: body %q, ETag %q", r.body, r.header.Get("ETag"))
	}
	r = c.do(t, "PUT", "Patient/"+id, patient(id, "female"), "Prefer", "return=OperationOutcome")
	r.wantStatus(t, 200)
	if str(r.obj(t), "resourceType") != "OperationOutcome" {
		t.Errorf("return=OperationOutcome: body %.200s", r.body)
	}
	r = c.do(t, "PUT", "Patient/"+id, patient(id, "male"), "Prefer", "return=representation")
	r.wantStatus(t, 200)
	if str(r.obj(t), "resourceType") != "Patient" || str(r.obj(t), "meta", "versionId") != "3" {
		t.Errorf("return=representation: body %.200s", r.body)
	}
}

func (c *client) testVRead(t *testing.T) {
	id := "vread-" + fmt.Sprint(time.Now().UnixNano())
	c.do(t, "PUT", "Patient/"+id, patient(id, "male")).wantStatus(t, 201)
	c.do(t, "PUT", "Patient/"+id, patient(id, "female")).wantStatus(t, 200)
	for v, gender := range map[string]string{"1": "male", "2": "female"} {
		r := c.do(t, "GET", "Patient/"+id+"/_history/"+v, "")
		r.wantStatus(t, 200)
		if str(r.obj(t), "gender") != gender || r.header.Get("ETag") != `W/"`+v+`"` {
			t.Errorf("vread %s: gender %q ETag %q", v, str(r.obj(t), "gender"), r.header.Get("ETag"))
		}
		c.do(t, "GET", "Patient/"+id+"/_history/"+v, "", "If-None-Match", `W/"`+v+`"`).wantStatus(t, 304)
	}
	c.do(t, "GET", "Patient/"+id+"/_history/99", "").wantOutcome(t, 404)
	c.do(t, "GET", "Patient/"+id+"/_history/x", "").wantOutcome(t, 404)
	c.do(t, "GET", "Patient/no-"+id+"/_history/1", "").wantOutcome(t, 404)
}

func (c *client) testDelete(t *testing.T) {
	id, _ := c.create(t, "male")
	r := c.do(t, "DELETE", "Patient/"+id, "")
	if r.status != 204 && r.status != 200 {
		t.Fatalf("DELETE status = %d, want 204 or 200", r.status)
	}
	c.do(t, "GET", "Patient/"+id, "").wantOutcome(t, 410)
	r = c.do(t, "DELETE", "Patient/"+id, "")
	r.wantStatus(t, 204)
	h := c.do(t, "GET", "Patient/"+id+"/_history", "")
	h.wantStatus(t, 200)
	b := h.obj(t)
	if str(b, "total") != "2" || length(b, "entry") != 2 {
		t.Fatalf("history after two deletes: total %s, %d entries, want 2 (one deletion version)", str(b, "total"), length(b, "entry"))
	}
	if get(b, "entry", 0, "resource") != nil || str(b, "entry", 0, "request", "method") != "DELETE" {
		t.Errorf("deletion entry: %s", mustJSON(get(b, "entry", 0)))
	}
	c.do(t, "GET", "Patient/"+id+"/_history/1", "").wantStatus(t, 200)
	c.do(t, "GET", "Patient/"+id+"/_history/2", "").wantOutcome(t, 410)
	c.do(t, "DELETE", "Patient/never-existed", "").wantOutcome(t, 404)
	c.do(t, "PATCH", "Patient/"+id, `[]`, "Content-Type", "application/json-patch+json").wantOutcome(t, 410)
	r = c.do(t, "DELETE", "Patient/"+id, "", "Prefer", "return=OperationOutcome")
	if r.status != 204 && r.status != 200 {
		t.Errorf("DELETE with Prefer: status %d", r.status)
	}

	t.Run("update brings it back", func(t *testing.T) {
		r := c.do(t, "PUT", "Patient/"+id, patient(id, "female"))
		r.wantStatus(t, 201)
		if r.header.Get("ETag") != `W/"3"` {
			t.Errorf("ETag = %q, want W/\"3\"", r.header.Get("ETag"))
		}
		c.do(t, "GET", "Patient/"+id, "").wantStatus(t, 200)
	})
	t.Run("If-Match", func(t *testing.T) {
		c.do(t, "DELETE", "Patient/"+id, "", "If-Match", `W/"1"`).wantOutcome(t, 412)
		r := c.do(t, "DELETE", "Patient/"+id, "", "If-Match", `W/"3"`)
		if r.status != 204 && r.status != 200 {
			t.Errorf("status %d", r.status)
		}
	})
}

const jsonPatch = "application/json-patch+json"

func (c *client) testPatch(t *testing.T) {
	id, _ := c.create(t, "male")
	r := c.do(t, "PATCH", "Patient/"+id, `[{"op":"test","path":"/gender","value":"male"},{"op":"replace","path":"/gender","value":"female"},{"op":"add","path":"/name/0/given/-","value":"Jim"},{"op":"remove","path":"/active"}]`,
		"Content-Type", jsonPatch)
	r.wantStatus(t, 200)
	res := r.obj(t)
	if str(res, "gender") != "female" || str(res, "name", 0, "given", 1) != "Jim" || get(res, "active") != nil || str(res, "meta", "versionId") != "2" {
		t.Errorf("patched resource: %s", r.body)
	}
	if r.header.Get("ETag") != `W/"2"` {
		t.Errorf("ETag = %q", r.header.Get("ETag"))
	}
	tests := []struct {
		name, body, contentType string
		hdr                     []string
		status                  int
	}{
		{"failing test op", `[{"op":"test","path":"/gender","value":"male"}]`, jsonPatch, nil, 422},
		{"path does not exist", `[{"op":"remove","path":"/deceasedBoolean"}]`, jsonPatch, nil, 422},
		{"changes the id", `[{"op":"replace","path":"/id","value":"other"}]`, jsonPatch, nil, 422},
		{"changes the resourceType", `[{"op":"replace","path":"/resourceType","value":"Group"}]`, jsonPatch, nil, 422},
		{"malformed patch", `{"op":"replace"}`, jsonPatch, nil, 400},
		{"unknown op", `[{"op":"frob","path":"/gender"}]`, jsonPatch, nil, 400},
		{"result is invalid", `[{"op":"replace","path":"/gender","value":"bogus"}]`, jsonPatch, nil, 400},
		{"FHIR JSON content type", `[]`, "application/fhir+json", nil, 415},
		{"stale If-Match", `[]`, jsonPatch, []string{"If-Match", `W/"1"`}, 412},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := append([]string{"Content-Type", tt.contentType}, tt.hdr...)
			c.do(t, "PATCH", "Patient/"+id, tt.body, hdr...).wantOutcome(t, tt.status)
		})
	}
	t.Run("unknown resource", func(t *testing.T) {
		c.do(t, "PATCH", "Patient/nope-"+id, `[]`, "Content-Type", jsonPatch).wantOutcome(t, 404)
	})
	t.Run("failed patches made no version", func(t *testing.T) {
		r := c.do(t, "GET", "Patient/"+id, "")
		if r.header.Get("ETag") != `W/"2"` {
			t.Errorf("ETag = %q, want W/\"2\"", r.header.Get("ETag"))
		}
	})
}

func (c *client) testNegotiation(t *testing.T) {
	id, _ := c.create(t, "male")
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
	}{
		{"_format json", "GET", "Patient/" + id + "?_format=json", "", nil, 200},
		{"_format fhir+json", "GET", "Patient/" + id + "?_format=application/fhir%2Bjson", "", nil, 200},
		{"_format xml", "GET", "Patient/" + id + "?_format=xml", "", nil, 406},
		{"_format fhir+xml", "GET", "Patient/" + id + "?_format=application/fhir%2Bxml", "", nil, 406},
		{"_format wins over Accept", "GET", "Patient/" + id + "?_format=json", "", []string{"Accept", "application/fhir+xml"}, 200},
		{"Accept only XML", "GET", "Patient/" + id, "", []string{"Accept", "application/fhir+xml"}, 406},
		{"Accept JSON among others", "GET", "Patient/" + id, "", []string{"Accept", "application/fhir+xml;q=0.9, application/json;q=0.5"}, 200},
		{"Accept any", "GET", "Patient/" + id, "", []string{"Accept", "*/*"}, 200},
		{"no Accept", "GET", "Patient/" + id, "", []string{"Accept", ""}, 200},
		{"XML body", "POST", "Patient", `<Patient xmlns="http://hl7.org/fhir"/>`, []string{"Content-Type", "application/fhir+xml"}, 415},
		{"no Content-Type", "POST", "Patient", patient("x", "male"), []string{"Content-Type", ""}, 415},
		{"text/plain body", "POST", "Patient", patient("x", "male"), []string{"Content-Type", "text/plain"}, 415},
		{"application/json with charset", "POST", "Patient", patient("x", "male"), []string{"Content-Type", "application/json; charset=utf-8"}, 201},
		{"metadata as XML", "GET", "metadata?_format=xml", "", nil, 406},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if tt.status >= 400 {
				r.wantOutcome(t, tt.status)
				return
			}
			r.wantStatus(t, tt.status)
			if ct := r.header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func (c *client) testErrors(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		allow              bool
	}{
		{"DELETE on a type without criteria", "DELETE", "Patient", 405, true},
		{"PUT on a type without criteria", "PUT", "Patient", 405, true},
		{"PUT on the base", "PUT", "", 405, true},
		{"POST on an instance", "POST", "Patient/x", 405, true},
		{"system search is not supported", "GET", "?_type=Patient", 400, false},
		{"unknown path", "GET", "Patient/x/y", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(t, tt.method, tt.path, "")
			issues := r.wantOutcome(t, tt.status)
			if tt.allow && r.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if tt.status == 400 && !c.hasIssueAbout(issues, "not-supported") {
				t.Errorf("issues = %s, want code not-supported", mustJSON(issues))
			}
		})
	}
}
