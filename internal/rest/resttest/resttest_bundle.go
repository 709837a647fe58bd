package resttest

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func device(id, status string) string {
	return fmt.Sprintf(`{"resourceType":"Device","id":"%s","status":"%s"}`, id, status)
}

// testHistory uses Device, which no other test writes, so type history has
// exactly what this test made.
func (c *client) testHistory(t *testing.T) {
	id := "hist-1"
	c.do(t, "PUT", "Device/"+id, device(id, "active")).wantStatus(t, 201)
	time.Sleep(5 * time.Millisecond)
	v2 := c.do(t, "PUT", "Device/"+id, device(id, "inactive"))
	v2.wantStatus(t, 200)
	v2time := str(v2.obj(t), "meta", "lastUpdated")
	time.Sleep(5 * time.Millisecond)
	c.do(t, "PATCH", "Device/"+id, `[{"op":"replace","path":"/status","value":"entered-in-error"}]`, "Content-Type", jsonPatch).wantStatus(t, 200)
	time.Sleep(5 * time.Millisecond)
	c.do(t, "DELETE", "Device/"+id, "")
	r := c.do(t, "POST", "Device", device("x", "active"))
	r.wantStatus(t, 201)
	otherID := str(r.obj(t), "id")

	h := c.do(t, "GET", "Device/"+id+"/_history", "")
	h.wantStatus(t, 200)
	b := h.obj(t)
	if str(b, "resourceType") != "Bundle" || str(b, "type") != "history" || str(b, "total") != "4" || length(b, "entry") != 4 {
		t.Fatalf("instance history: type %s total %s entries %d; want history, 4, 4", str(b, "type"), str(b, "total"), length(b, "entry"))
	}
	wantMethods := []string{"DELETE", "PATCH", "PUT", "PUT"}
	for i, want := range wantMethods {
		e := get(b, "entry", i)
		if got := str(e, "request", "method"); got != want {
			t.Errorf("entry[%d].request.method = %s, want %s (newest first)", i, got, want)
		}
		if got, wantURL := str(e, "request", "url"), "Device/"+id; got != wantURL {
			t.Errorf("entry[%d].request.url = %s, want %s", i, got, wantURL)
		}
		if got, want := str(e, "response", "etag"), fmt.Sprintf(`W/"%d"`, 4-i); got != want {
			t.Errorf("entry[%d].response.etag = %s, want %s", i, got, want)
		}
		if str(e, "response", "status") == "" || str(e, "response", "lastModified") == "" {
			t.Errorf("entry[%d].response lacks status or lastModified: %s", i, mustJSON(e))
		}
		if got := str(e, "fullUrl"); got != c.base+"/Device/"+id {
			t.Errorf("entry[%d].fullUrl = %s", i, got)
		}
		if (get(e, "resource") == nil) != (want == "DELETE") {
			t.Errorf("entry[%d]: resource present = %v for %s", i, get(e, "resource") != nil, want)
		}
	}
	if str(b, "entry", 2, "resource", "status") != "inactive" {
		t.Errorf("entry[2] is not version 2: %s", mustJSON(get(b, "entry", 2)))
	}

	t.Run("paging", func(t *testing.T) {
		var seen []string
		next := "Device/" + id + "/_history?_count=3"
		pages := 0
		for next != "" {
			r := c.do(t, "GET", next, "")
			r.wantStatus(t, 200)
			b := r.obj(t)
			pages++
			if str(b, "total") != "4" {
				t.Errorf("page %d: total %s, want 4", pages, str(b, "total"))
			}
			next = ""
			for i := range length(b, "link") {
				l := get(b, "link", i)
				if !strings.HasPrefix(str(l, "url"), c.base+"/") {
					t.Errorf("link %s is not absolute under the base: %s", str(l, "relation"), str(l, "url"))
				}
				if str(l, "relation") == "next" {
					next = str(l, "url")
				}
			}
			for i := range length(b, "entry") {
				seen = append(seen, str(b, "entry", i, "response", "etag"))
			}
			if pages > 3 {
				t.Fatal("paging does not end")
			}
		}
		if pages != 2 || strings.Join(seen, ",") != `W/"4",W/"3",W/"2",W/"1"` {
			t.Errorf("%d pages with %v; want 2 pages, versions 4..1", pages, seen)
		}
	})
	t.Run("_since", func(t *testing.T) {
		r := c.do(t, "GET", "Device/"+id+"/_history?_since="+url.QueryEscape(v2time), "")
		r.wantStatus(t, 200)
		if got := str(r.obj(t), "total"); got != "3" {
			t.Errorf("total = %s, want 3 (versions 2, 3, 4)", got)
		}
	})
	t.Run("_at", func(t *testing.T) {
		r := c.do(t, "GET", "Device/"+id+"/_history?_at="+url.QueryEscape(v2time), "")
		r.wantStatus(t, 200)
		b := r.obj(t)
		found := false
		for i := range length(b, "entry") {
			if str(b, "entry", i, "response", "etag") == `W/"2"` {
				found = true
			}
			if str(b, "entry", i, "response", "etag") == `W/"4"` {
				t.Errorf("_at=%s includes version 4, made later", v2time)
			}
		}
		if !found {
			t.Errorf("_at=%s does not include version 2: %s", v2time, r.body)
		}
	})
	t.Run("type history", func(t *testing.T) {
		r := c.do(t, "GET", "Device/_history", "")
		r.wantStatus(t, 200)
		b := r.obj(t)
		if str(b, "total") != "5" || str(b, "entry", 0, "request", "url") != "Device" || str(b, "entry", 0, "request", "method") != "POST" {
			t.Errorf("type history: total %s, first entry %s; want 5 and the POST of Device/%s", str(b, "total"), mustJSON(get(b, "entry", 0)), otherID)
		}
	})
	t.Run("system history", func(t *testing.T) {
		r := c.do(t, "GET", "_history?_count=1", "")
		r.wantStatus(t, 200)
		b := r.obj(t)
		if length(b, "entry") != 1 || str(b, "entry", 0, "fullUrl") != c.base+"/Device/"+otherID {
			t.Errorf("system history newest entry: %s", mustJSON(get(b, "entry")))
		}
		var total int
		fmt.Sscan(str(b, "total"), &total)
		if total < 5 {
			t.Errorf("system history total %d, want at least 5", total)
		}
	})
	t.Run("_count=0 gives the total only", func(t *testing.T) {
		r := c.do(t, "GET", "Device/_history?_count=0", "")
		r.wantStatus(t, 200)
		if b := r.obj(t); str(b, "total") != "5" || length(b, "entry") != 0 {
			t.Errorf("total %s, %d entries", str(b, "total"), length(b, "entry"))
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		c.do(t, "GET", "Device/_history?_since=yesterday", "").wantOutcome(t, 400)
		c.do(t, "GET", "Device/_history?_count=-1", "").wantOutcome(t, 400)
		c.do(t, "GET", "Device/_history?_at=2020-13", "").wantOutcome(t, 400)
	})
	t.Run("unknown resource", func(t *testing.T) {
		c.do(t, "GET", "Device/never/_history", "").wantOutcome(t, 404)
	})
}

const txPatient = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"

func (c *client) testTransaction(t *testing.T) {
	c.do(t, "PUT", "Patient/tx-existing", patient("tx-existing", "male")).wantStatus(t, 201)
	bundle := `{"resourceType":"Bundle","type":"transaction","entry":[
	 {"request":{"method":"GET","url":"Patient/tx-put"}},
	 {"fullUrl":"urn:uuid:88f151c0-a954-468a-88ff-b3a2f7d2b8c2","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
	   "subject":{"reference":"` + txPatient + `"},
	   "contained":[{"resourceType":"Provenance","id":"p","target":[{"reference":"` + txPatient + `"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"` + txPatient + `"}}]}],
	   "extension":[{"url":"http://example.org/x","valueReference":{"reference":"` + txPatient + `"}},{"url":"http://example.org/provenance","valueReference":{"reference":"#p"}}]},
	  "request":{"method":"POST","url":"Observation"}},
	 {"fullUrl":"` + txPatient + `","resource":` + patient("ignored", "female") + `,"request":{"method":"POST","url":"Patient"}},
	 {"resource":` + patient("tx-put", "male") + `,"request":{"method":"PUT","url":"Patient/tx-put"}},
	 {"resource":` + patient("tx-existing", "female") + `,"request":{"method":"PUT","url":"Patient/tx-existing"}},
	 {"request":{"method":"DELETE","url":"Patient/tx-existing"}}
	]}`
	r := c.do(t, "POST", "", bundle)
	r.wantStatus(t, 200)
	b := r.obj(t)
	if str(b, "type") != "transaction-response" || length(b, "entry") != 6 {
		t.Fatalf("response: type %s, %d entries: %.500s", str(b, "type"), length(b, "entry"), r.body)
	}
	wantStatus := []string{"200", "201", "201", "201", "201", "204"}
	for i, want := range wantStatus {
		if got := str(b, "entry", i, "response", "status"); !strings.HasPrefix(got, want) {
			t.Errorf("entry[%d].response.status = %q, want %s (entries in request order, processed DELETE, POST, PUT, GET)", i, got, want)
		}
	}
	if str(b, "entry", 0, "resource", "id") != "tx-put" {
		t.Errorf("the GET did not see the PUT of the same transaction: %s", mustJSON(get(b, "entry", 0)))
	}
	patLoc := str(b, "entry", 2, "response", "location")
	parts := strings.Split(patLoc, "/")
	if len(parts) < 4 || parts[len(parts)-4] != "Patient" || str(b, "entry", 2, "response", "etag") != `W/"1"` || str(b, "entry", 2, "response", "lastModified") == "" {
		t.Fatalf("Patient entry response: %s", mustJSON(get(b, "entry", 2)))
	}
	patRef := "Patient/" + parts[len(parts)-3]
	obsLoc := str(b, "entry", 1, "response", "location")
	obsID := strings.Split(strings.TrimPrefix(obsLoc, c.base+"/"), "/")[1]
	obs := c.do(t, "GET", "Observation/"+obsID, "")
	obs.wantStatus(t, 200)
	o := obs.obj(t)
	for _, path := range [][]any{
		{"subject", "reference"},
		{"contained", 0, "target", 0, "reference"},
		{"contained", 0, "agent", 0, "who", "reference"},
		{"extension", 0, "valueReference", "reference"},
	} {
		if got := str(o, path...); got != patRef {
			t.Errorf("Observation %v = %q, want %q", path, got, patRef)
		}
	}
	if strings.Contains(string(obs.body), "urn:uuid") {
		t.Errorf("stored Observation still holds a urn:uuid: %s", obs.body)
	}
	if r := c.do(t, "GET", "Patient/tx-existing", ""); r.status != 200 || r.header.Get("ETag") != `W/"3"` {
		t.Errorf("Patient/tx-existing after DELETE then PUT: status %d ETag %s, want 200 W/\"3\"", r.status, r.header.Get("ETag"))
	}

	t.Run("Prefer return=minimal", func(t *testing.T) {
		r := c.do(t, "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":`+patient("m", "male")+`,"request":{"method":"POST","url":"Patient"}}]}`, "Prefer", "return=minimal")
		r.wantStatus(t, 200)
		b := r.obj(t)
		if get(b, "entry", 0, "resource") != nil || str(b, "entry", 0, "response", "location") == "" {
			t.Errorf("minimal entry: %s", mustJSON(get(b, "entry", 0)))
		}
	})
	t.Run("PATCH entry", func(t *testing.T) {
		patch := `[{"op":"replace","path":"/gender","value":"other"}]`
		enc := base64Encode(patch)
		r := c.do(t, "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+enc+`"},"request":{"method":"PATCH","url":"Patient/tx-put"}}]}`)
		r.wantStatus(t, 200)
		if got := str(r.obj(t), "entry", 0, "resource", "gender"); got != "other" {
			t.Errorf("patched gender = %q", got)
		}
	})
}

// testTransactionRollback uses Substance, which no other test writes.
func (c *client) testTransactionRollback(t *testing.T) {
	tests := []struct{ name, failing string }{
		{"entry not found", `{"request":{"method":"DELETE","url":"Substance/does-not-exist"}}`},
		{"invalid entry", `{"resource":` + patient("bad", "bogus") + `,"request":{"method":"PUT","url":"Patient/bad"}}`},
		{"stale If-Match", `{"resource":` + patient("tx-existing", "male") + `,"request":{"method":"PUT","url":"Patient/tx-existing","ifMatch":"W/\"1\""}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := `{"resourceType":"Bundle","type":"transaction","entry":[
			  {"resource":{"resourceType":"Substance","id":"rb","code":{"text":"salt"}},"request":{"method":"PUT","url":"Substance/rb"}},
			  {"fullUrl":"urn:uuid:0b7b6c5e-8e0f-4c1e-9d0a-0d4f3b0a1f11","resource":{"resourceType":"Substance","code":{"text":"pepper"}},"request":{"method":"POST","url":"Substance"}},
			  ` + tt.failing + `]}`
			r := c.do(t, "POST", "", bundle)
			if r.status < 400 {
				t.Fatalf("failing transaction: status %d, want an error", r.status)
			}
			r.wantOutcome(t, r.status)
			c.do(t, "GET", "Substance/rb", "").wantOutcome(t, 404)
			h := c.do(t, "GET", "Substance/_history", "")
			h.wantStatus(t, 200)
			if got := str(h.obj(t), "total"); got != "0" {
				t.Errorf("Substance history total = %s after a rolled-back transaction, want 0", got)
			}
		})
	}
}

func (c *client) testBundleValidation(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not a Bundle", patient("x", "male")},
		{"not JSON", `{"resourceType":"Bundle",`},
		{"collection Bundle", `{"resourceType":"Bundle","type":"collection","entry":[]}`},
		{"entry without request", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + patient("x", "male") + `}]}`},
		{"bad method", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"FROB","url":"Patient/x"}}]}`},
		{"duplicate fullUrls", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":` + patient("a", "male") + `,"request":{"method":"POST","url":"Patient"}},
			{"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":` + patient("b", "male") + `,"request":{"method":"POST","url":"Patient"}}]}`},
		{"reference to an unknown urn:uuid", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:22222222-2222-2222-2222-222222222222"}},"request":{"method":"POST","url":"Observation"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.do(t, "POST", "", tt.body).wantOutcome(t, 400)
		})
	}
}

// testBatch uses Location, which no other test writes.
func (c *client) testBatch(t *testing.T) {
	bundle := `{"resourceType":"Bundle","type":"batch","entry":[
	  {"resource":{"resourceType":"Location","name":"ok"},"request":{"method":"POST","url":"Location"}},
	  {"resource":` + patient("batch-bad", "bogus") + `,"request":{"method":"PUT","url":"Patient/batch-bad"}},
	  {"request":{"method":"GET","url":"Location/does-not-exist"}},
	  {"resource":{"resourceType":"Location","id":"batch-put","name":"put"},"request":{"method":"PUT","url":"Location/batch-put"}},
	  {"request":{"method":"GET","url":"Location/batch-put"}},
	  {"request":{"method":"GET","url":"Location?name=x"}}
	]}`
	r := c.do(t, "POST", "", bundle)
	r.wantStatus(t, 200)
	b := r.obj(t)
	if str(b, "type") != "batch-response" || length(b, "entry") != 6 {
		t.Fatalf("response: %.500s", r.body)
	}
	for i, want := range []string{"201", "400", "404", "201", "200", "400"} {
		e := get(b, "entry", i)
		got := str(e, "response", "status")
		if !strings.HasPrefix(got, want) {
			t.Errorf("entry[%d].response.status = %q, want %s", i, got, want)
		}
		if want >= "400" && str(e, "response", "outcome", "resourceType") != "OperationOutcome" {
			t.Errorf("entry[%d] failed without an OperationOutcome: %s", i, mustJSON(e))
		}
	}
	h := c.do(t, "GET", "Location/_history", "")
	if got := str(h.obj(t), "total"); got != "2" {
		t.Errorf("Location history total = %s, want 2: the good entries are stored despite the bad one", got)
	}
	c.do(t, "GET", "Patient/batch-bad", "").wantOutcome(t, 404)
}

// testConcurrency: many clients do read → update with If-Match on one
// resource. Every 200 must bump the version by exactly one and every other
// attempt must be a 412: no update is lost. Then updates without If-Match
// must all succeed (the server retries lost races).
func (c *client) testConcurrency(t *testing.T) {
	const workers, rounds = 8, 6
	id := "concurrent-1"
	c.do(t, "PUT", "Patient/"+id, patient(id, "male")).wantStatus(t, 201)
	var mu sync.Mutex
	ok, failed := 0, 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				r := c.do(t, "GET", "Patient/"+id, "")
				if r.status != 200 {
					t.Errorf("worker %d: read status %d", w, r.status)
					return
				}
				etag := r.header.Get("ETag")
				var v int
				fmt.Sscanf(etag, `W/"%d"`, &v)
				u := c.do(t, "PUT", "Patient/"+id, patient(id, "female"), "If-Match", etag)
				mu.Lock()
				switch u.status {
				case 200:
					ok++
					if got, want := u.header.Get("ETag"), fmt.Sprintf(`W/"%d"`, v+1); got != want {
						t.Errorf("update after %s: ETag %s, want %s", etag, got, want)
					}
				case 412:
					failed++
				default:
					t.Errorf("update status %d: %s", u.status, u.body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r := c.do(t, "GET", "Patient/"+id, "")
	if got, want := r.header.Get("ETag"), fmt.Sprintf(`W/"%d"`, 1+ok); got != want {
		t.Errorf("final ETag %s, want %s after %d successful updates (%d got 412)", got, want, ok, failed)
	}
	if ok+failed != workers*rounds || ok == 0 {
		t.Errorf("%d successes + %d failures, want %d attempts with at least one success", ok, failed, workers*rounds)
	}

	t.Run("without If-Match nothing is lost", func(t *testing.T) {
		before := c.do(t, "GET", "Patient/"+id, "").header.Get("ETag")
		var v0 int
		fmt.Sscanf(before, `W/"%d"`, &v0)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				if u := c.do(t, "PUT", "Patient/"+id, patient(id, "male")); u.status != 200 {
					t.Errorf("update status %d: %s", u.status, u.body)
				}
			})
		}
		wg.Wait()
		after := c.do(t, "GET", "Patient/"+id, "").header.Get("ETag")
		if want := fmt.Sprintf(`W/"%d"`, v0+workers); after != want {
			t.Errorf("ETag after %d concurrent updates = %s, want %s", workers, after, want)
		}
	})
}
