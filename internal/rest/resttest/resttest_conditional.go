package resttest

import (
	"fmt"
	"strings"
	"testing"
)

// The conditional interactions (R4 http.html §3.1.0.4.3 update, §3.1.0.6.1
// delete, §3.1.0.7.2 create) and their Bundle forms (§3.1.0.11.2
// conditional references, ifNoneExist). They search Patient by identifier
// and Practitioner and Organization by identifier, in a system of their
// own so that no other test's resources match.

const condSystem = "http://example.org/fhir/conditional-test"

func condPatient(id, value string) string {
	idPart := ""
	if id != "" {
		idPart = `"id":"` + id + `",`
	}
	return fmt.Sprintf(`{"resourceType":"Patient",%s"identifier":[{"system":"%s","value":"%s"}],"gender":"other"}`, idPart, condSystem, value)
}

func condQuery(value string) string { return "identifier=" + condSystem + "|" + value }

func (c *client) testConditional(t *testing.T) {
	t.Run("create", c.testConditionalCreate)
	t.Run("update", c.testConditionalUpdate)
	t.Run("delete", c.testConditionalDelete)
	t.Run("transaction", c.testConditionalTransaction)
}

func (c *client) testConditionalCreate(t *testing.T) {
	first := c.do(t, "POST", "Patient", condPatient("", "c1"), "If-None-Exist", condQuery("c1"))
	first.wantStatus(t, 201)
	id := str(first.obj(t), "id")

	t.Run("one match answers 200 with it and writes nothing", func(t *testing.T) {
		r := c.do(t, "POST", "Patient", condPatient("", "c1"), "If-None-Exist", condQuery("c1"))
		r.wantStatus(t, 200)
		if got := str(r.obj(t), "id"); got != id {
			t.Errorf("id = %s, want the existing %s", got, id)
		}
		if got := r.header.Get("ETag"); got != `W/"1"` {
			t.Errorf("ETag = %s, want W/\"1\" (no new version)", got)
		}
	})
	t.Run("several matches are 412", func(t *testing.T) {
		c.do(t, "POST", "Patient", condPatient("", "c1")).wantStatus(t, 201)
		c.do(t, "POST", "Patient", condPatient("", "c1"), "If-None-Exist", condQuery("c1")).wantOutcome(t, 412)
	})
	t.Run("unknown parameter is 400", func(t *testing.T) {
		c.do(t, "POST", "Patient", condPatient("", "c2"), "If-None-Exist", "bogus-param=1").wantOutcome(t, 400)
	})
}

func (c *client) testConditionalUpdate(t *testing.T) {
	r := c.do(t, "PUT", "Patient?"+condQuery("u1"), condPatient("", "u1"))
	r.wantStatus(t, 201)
	id := str(r.obj(t), "id")
	if id == "" {
		t.Fatalf("no match, no id: created without an id: %s", r.body)
	}

	t.Run("one match updates it", func(t *testing.T) {
		r := c.do(t, "PUT", "Patient?"+condQuery("u1"), condPatient("", "u1"))
		r.wantStatus(t, 200)
		if got := str(r.obj(t), "id"); got != id {
			t.Errorf("id = %s, want %s", got, id)
		}
		if got := r.header.Get("ETag"); got != `W/"2"` {
			t.Errorf("ETag = %s, want W/\"2\"", got)
		}
		c.do(t, "PUT", "Patient?"+condQuery("u1"), condPatient(id, "u1")).wantStatus(t, 200)
	})
	t.Run("one match with another id in the body is 400", func(t *testing.T) {
		c.do(t, "PUT", "Patient?"+condQuery("u1"), condPatient("someone-else", "u1")).wantOutcome(t, 400)
	})
	t.Run("no match with an id is update as create", func(t *testing.T) {
		r := c.do(t, "PUT", "Patient?"+condQuery("u2"), condPatient("cond-upd-2", "u2"))
		r.wantStatus(t, 201)
		c.do(t, "GET", "Patient/cond-upd-2", "").wantStatus(t, 200)
	})
	t.Run("several matches are 412", func(t *testing.T) {
		c.do(t, "POST", "Patient", condPatient("", "u3")).wantStatus(t, 201)
		c.do(t, "POST", "Patient", condPatient("", "u3")).wantStatus(t, 201)
		c.do(t, "PUT", "Patient?"+condQuery("u3"), condPatient("", "u3")).wantOutcome(t, 412)
	})
	t.Run("no criteria is refused", func(t *testing.T) {
		c.do(t, "PUT", "Patient", condPatient("", "u4")).wantOutcome(t, 405)
	})
}

func (c *client) testConditionalDelete(t *testing.T) {
	t.Run("no match deletes nothing", func(t *testing.T) {
		c.do(t, "DELETE", "Patient?"+condQuery("d0"), "").wantStatus(t, 204)
	})
	t.Run("one match is deleted", func(t *testing.T) {
		id := str(c.do(t, "POST", "Patient", condPatient("", "d1")).obj(t), "id")
		c.do(t, "DELETE", "Patient?"+condQuery("d1"), "").wantStatus(t, 204)
		c.do(t, "GET", "Patient/"+id, "").wantOutcome(t, 410)
	})
	t.Run("several matches are all deleted", func(t *testing.T) {
		a := str(c.do(t, "POST", "Patient", condPatient("", "d2")).obj(t), "id")
		b := str(c.do(t, "POST", "Patient", condPatient("", "d2")).obj(t), "id")
		other := str(c.do(t, "POST", "Patient", condPatient("", "d2-other")).obj(t), "id")
		c.do(t, "DELETE", "Patient?"+condQuery("d2"), "").wantStatus(t, 204)
		c.do(t, "GET", "Patient/"+a, "").wantOutcome(t, 410)
		c.do(t, "GET", "Patient/"+b, "").wantOutcome(t, 410)
		c.do(t, "GET", "Patient/"+other, "").wantStatus(t, 200)
	})
	t.Run("unknown parameter is 400", func(t *testing.T) {
		c.do(t, "DELETE", "Patient?bogus-param=1", "").wantOutcome(t, 400)
	})
}

func (c *client) testConditionalTransaction(t *testing.T) {
	pr := c.do(t, "POST", "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"`+condSystem+`","value":"npi-1"}]}`)
	pr.wantStatus(t, 201)
	prID := str(pr.obj(t), "id")
	obs := func(performer string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},"performer":[{"reference":"` + performer + `"}]}`
	}
	tx := func(entries ...string) string {
		return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	}
	post := func(res string) string {
		return `{"resource":` + res + `,"request":{"method":"POST","url":"Observation"}}`
	}

	t.Run("conditional reference with one match", func(t *testing.T) {
		r := c.do(t, "POST", "", tx(post(obs("Practitioner?identifier="+condSystem+"|npi-1"))))
		r.wantStatus(t, 200)
		loc := str(r.obj(t), "entry", 0, "response", "location")
		stored := c.do(t, "GET", strings.TrimSuffix(loc, "/_history/1"), "")
		stored.wantStatus(t, 200)
		if got, want := str(stored.obj(t), "performer", 0, "reference"), "Practitioner/"+prID; got != want {
			t.Errorf("stored performer = %s, want %s", got, want)
		}
	})
	t.Run("conditional reference with no match fails the transaction", func(t *testing.T) {
		c.do(t, "POST", "", tx(post(obs("Practitioner?identifier="+condSystem+"|nobody")))).wantOutcome(t, 412)
	})
	t.Run("conditional reference with several matches fails the transaction", func(t *testing.T) {
		for range 2 {
			c.do(t, "POST", "Practitioner", `{"resourceType":"Practitioner","identifier":[{"system":"`+condSystem+`","value":"npi-2"}]}`).wantStatus(t, 201)
		}
		c.do(t, "POST", "", tx(post(obs("Practitioner?identifier="+condSystem+"|npi-2")))).wantOutcome(t, 412)
	})
	t.Run("ifNoneExist creates once and then stands for the match", func(t *testing.T) {
		const orgURN = "urn:uuid:0c3a7d4e-1b2f-4a5c-9d8e-7f6a5b4c3d2e"
		body := tx(
			`{"fullUrl":"`+orgURN+`","resource":{"resourceType":"Organization","identifier":[{"system":"`+condSystem+`","value":"org-1"}]},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=`+condSystem+`|org-1"}}`,
			`{"resource":{"resourceType":"Patient","managingOrganization":{"reference":"`+orgURN+`"}},"request":{"method":"POST","url":"Patient"}}`)
		first := c.do(t, "POST", "", body)
		first.wantStatus(t, 200)
		b1 := first.obj(t)
		if got := str(b1, "entry", 0, "response", "status"); !strings.HasPrefix(got, "201") {
			t.Fatalf("first ifNoneExist: status %s, want 201", got)
		}
		orgRef := "Organization/" + str(b1, "entry", 0, "resource", "id")
		second := c.do(t, "POST", "", body)
		second.wantStatus(t, 200)
		b2 := second.obj(t)
		if got := str(b2, "entry", 0, "response", "status"); !strings.HasPrefix(got, "200") {
			t.Errorf("second ifNoneExist: status %s, want 200", got)
		}
		if got := str(b2, "entry", 1, "resource", "managingOrganization", "reference"); got != orgRef {
			t.Errorf("second Patient's managingOrganization = %s, want the existing %s", got, orgRef)
		}
	})
	t.Run("conditional update and delete entries", func(t *testing.T) {
		put := `{"resource":` + condPatient("", "tx-u") + `,"request":{"method":"PUT","url":"Patient?` + condQuery("tx-u") + `"}}`
		r := c.do(t, "POST", "", tx(put))
		r.wantStatus(t, 200)
		if got := str(r.obj(t), "entry", 0, "response", "status"); !strings.HasPrefix(got, "201") {
			t.Errorf("first conditional PUT entry: %s, want 201", got)
		}
		r = c.do(t, "POST", "", tx(put))
		r.wantStatus(t, 200)
		b := r.obj(t)
		if got := str(b, "entry", 0, "response", "status"); !strings.HasPrefix(got, "200") {
			t.Errorf("second conditional PUT entry: %s, want 200", got)
		}
		id := str(b, "entry", 0, "resource", "id")
		del := `{"request":{"method":"DELETE","url":"Patient?` + condQuery("tx-u") + `"}}`
		c.do(t, "POST", "", tx(del)).wantStatus(t, 200)
		c.do(t, "GET", "Patient/"+id, "").wantOutcome(t, 410)
	})
}
