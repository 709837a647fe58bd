package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

func TestRewrite(t *testing.T) {
	targets := map[string]string{
		"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a": "Patient/p1",
		"urn:oid:1.2.3": "Organization/o1",
	}
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"top-level reference", `{"resourceType":"Observation","subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","display":"x"}}`,
			`{"resourceType":"Observation","subject":{"reference":"Patient/p1","display":"x"}}`, false},
		{"contained and extension", `{"resourceType":"Observation","contained":[{"resourceType":"Provenance","target":[{"reference":"urn:oid:1.2.3"}]}],"extension":[{"url":"u","valueReference":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}}]}`,
			`{"resourceType":"Observation","contained":[{"resourceType":"Provenance","target":[{"reference":"Organization/o1"}]}],"extension":[{"url":"u","valueReference":{"reference":"Patient/p1"}}]}`, false},
		{"other references untouched", `{"a":{"reference":"Patient/x"},"b":[1, 2.50, {"reference":"#c"}],"c":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}`,
			`{"a":{"reference":"Patient/x"},"b":[1, 2.50, {"reference":"#c"}],"c":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}`, false},
		{"no urn at all keeps the bytes", `{ "a" : 1 }`, `{ "a" : 1 }`, false},
		{"whitespace and escapes", "{\n  \"subject\" : {\n    \"reference\" :  \"urn:oid:1.2.3\",\"display\":\"a \\\"reference\\\": \\\"urn:oid:9\\\"\"\n  },\"refer\\u0065nce\":\"urn:oid:1\\u002e2.3\"}",
			"{\n  \"subject\" : {\n    \"reference\" :  \"Organization/o1\",\"display\":\"a \\\"reference\\\": \\\"urn:oid:9\\\"\"\n  },\"refer\\u0065nce\":\"Organization/o1\"}", false},
		{"reference that is not a string", `{"reference":{"reference":"urn:oid:1.2.3"},"x":"reference"}`, `{"reference":{"reference":"Organization/o1"},"x":"reference"}`, false},
		{"unknown urn", `{"subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000000"}}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewriteRefs([]byte(tt.in), func(ref string) (string, bool, error) {
				if !isURN(ref) {
					return "", false, nil
				}
				t, ok := targets[ref]
				if !ok {
					return "", false, unknownRef(ref)
				}
				return t, true, nil
			})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("rewrite = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestProcessingOrder(t *testing.T) {
	methods := []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "POST", "DELETE"}
	entries := make([]entry, len(methods))
	for i, m := range methods {
		entries[i].req.Method = m
	}
	got := processingOrder(entries)
	want := []int{3, 7, 2, 6, 1, 4, 0, 5}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// fakeStore runs units of work without storing anything: the executor
// below records what it was asked to do.
type fakeStore struct{ store.Store }

func (fakeStore) Transact(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return fn(ctx, fakeTx{})
}

type fakeTx struct{ store.Tx }

type recorder struct {
	calls []*Request
	fail  map[int]error // by entry index
}

func (r *recorder) Execute(ctx context.Context, tx store.Tx, req *Request) (*Result, error) {
	r.calls = append(r.calls, req)
	if err := r.fail[req.Index]; err != nil {
		return nil, err
	}
	switch req.Method {
	case http.MethodPost:
		typ, _, _ := strings.Cut(req.URL, "?")
		return &Result{Status: 201, Location: typ + "/" + req.ID + "/_history/1", ETag: `W/"1"`,
			LastModified: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Resource: req.Resource}, nil
	case http.MethodDelete:
		return &Result{Status: 204}, nil
	}
	return &Result{Status: 200, Resource: []byte(`{"resourceType":"Patient","id":"x"}`)}, nil
}

func counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("id%d", n) }
}

const txBundle = `{"resourceType":"Bundle","type":"%s","entry":[
 {"request":{"method":"GET","url":"Patient/x"}},
 {"fullUrl":"urn:uuid:88f151c0-a954-468a-88ff-b3a2f7d2b8c2","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},"performer":[{"reference":"urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}]},"request":{"method":"POST","url":"Observation"}},
 {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","resource":{"resourceType":"Practitioner","id":"pr"},"request":{"method":"PUT","url":"Practitioner/pr"}},
 {"request":{"method":"DELETE","url":"Patient/old"}}
]}`

func TestProcessTransaction(t *testing.T) {
	rec := &recorder{}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}
	kind, resp, err := p.Process(context.Background(), fmt.Appendf(nil, txBundle, "transaction"), Representation)
	if err != nil || kind != "transaction" {
		t.Fatalf("Process = %q, %v", kind, err)
	}
	var order []int
	for _, c := range rec.calls {
		order = append(order, c.Index)
	}
	if want := []int{4, 1, 2, 3, 0}; !slices.Equal(order, want) {
		t.Errorf("execution order = %v, want %v", order, want)
	}
	obs := rec.calls[1]
	if obs.ID != "id1" || rec.calls[2].ID != "id2" {
		t.Errorf("ids assigned up front: Observation %q, Patient %q", obs.ID, rec.calls[2].ID)
	}
	if want := `{"resourceType":"Observation","subject":{"reference":"Patient/id2"},"performer":[{"reference":"Practitioner/pr"}]}`; string(obs.Resource) != want {
		t.Errorf("Observation sent as\n %s\nwant %s", obs.Resource, want)
	}
	var b struct {
		Type  string
		Entry []struct {
			Resource json.RawMessage
			Response struct{ Status, Location, Etag, LastModified string }
		}
	}
	if err := json.Unmarshal(resp, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "transaction-response" || len(b.Entry) != 5 {
		t.Fatalf("response %s", resp)
	}
	wantStatus := []string{"200 OK", "201 Created", "201 Created", "200 OK", "204 No Content"}
	for i, e := range b.Entry {
		if e.Response.Status != wantStatus[i] {
			t.Errorf("entry[%d].response.status = %q, want %q", i, e.Response.Status, wantStatus[i])
		}
	}
	if e := b.Entry[2].Response; e.Location != "Patient/id2/_history/1" || e.Etag != `W/"1"` || e.LastModified != "2024-01-02T03:04:05.000Z" {
		t.Errorf("entry[2].response = %+v", e)
	}
}

func TestProcessTransactionFailure(t *testing.T) {
	rec := &recorder{fail: map[int]error{2: fhir.Errorf(fhir.Invalid, "bad patient")}}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}
	_, _, err := p.Process(context.Background(), fmt.Appendf(nil, txBundle, "transaction"), Representation)
	if !fhir.IsCode(err, fhir.Invalid) || !strings.Contains(err.Error(), "Bundle.entry[2]") {
		t.Fatalf("err = %v, want Invalid naming Bundle.entry[2]", err)
	}
	if len(rec.calls) != 3 {
		t.Errorf("%d entries executed, want the transaction to stop at the failing one (3)", len(rec.calls))
	}
}

func TestProcessBatch(t *testing.T) {
	rec := &recorder{fail: map[int]error{2: fhir.Errorf(fhir.Invalid, "bad patient"), 0: errors.New("disk on fire")}}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}
	kind, resp, err := p.Process(context.Background(), fmt.Appendf(nil, txBundle, "batch"), Minimal)
	if err != nil || kind != "batch" {
		t.Fatalf("Process = %q, %v", kind, err)
	}
	if len(rec.calls) != 5 {
		t.Errorf("%d entries executed, want all 5", len(rec.calls))
	}
	s := string(resp)
	for _, want := range []string{`"type":"batch-response"`, `"status":"500 Internal Server Error"`, `"status":"400 Bad Request"`, `"diagnostics":"bad patient"`, `"diagnostics":"internal server error"`} {
		if !strings.Contains(s, want) {
			t.Errorf("response lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, "disk on fire") {
		t.Errorf("an internal error's detail reached the client: %s", s)
	}
	if strings.Contains(s, `"resource"`) {
		t.Errorf("return=minimal response has resources: %s", s)
	}
}

func TestBundleErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not JSON", `{`},
		{"not a Bundle", `{"resourceType":"Patient"}`},
		{"wrong type", `{"resourceType":"Bundle","type":"searchset"}`},
		{"entry without request", `{"resourceType":"Bundle","type":"batch","entry":[{}]}`},
		{"entry without url", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET"}}]}`},
		{"bad urn", `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:nope","request":{"method":"GET","url":"Patient/1"}}]}`},
		{"duplicate fullUrl", `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"http://a/Patient/1","request":{"method":"GET","url":"Patient/1"}},{"fullUrl":"http://a/Patient/1","request":{"method":"GET","url":"Patient/1"}}]}`},
		{"unknown urn reference", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"urn:oid:1.2"}},"request":{"method":"POST","url":"Observation"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Processor{Store: fakeStore{}, Exec: &recorder{}, NewID: counter()}
			if _, _, err := p.Process(context.Background(), []byte(tt.body), Representation); !fhir.IsCode(err, fhir.Invalid) {
				t.Errorf("err = %v, want Invalid", err)
			}
		})
	}
}

// TestReadBundle checks the Bundle reader: members by their exact names,
// strings unescaped, resources handed on compact, and an error naming the
// element for a value of the wrong kind.
func TestReadBundle(t *testing.T) {
	pretty := "{\n  \"resourceType\" : \"Bundle\",\n  \"type\" : \"transaction\",\n  \"entry\" : [ {\n" +
		"    \"fullUrl\" : \"urn:uuid:2e2a6b4c-0a3c-4b5e-9c1d-3f1e2d4c5b6a\",\n" +
		"    \"resource\" : {\n      \"resourceType\" : \"Patient\",\n      \"name\" : [ { \"family\" : \"O'Brien \\\"Jr\\\"\" } ]\n    },\n" +
		"    \"request\" : { \"method\" : \"POST\", \"url\" : \"Patient\", \"ifNoneExist\" : \"identifier=a\\u007cb&name=x\", \"extra\" : [ 1 ] }\n" +
		"  }, null, { \"request\" : null, \"Resource\" : { } } ]\n}"
	wb, err := readBundle([]byte(pretty))
	if err != nil {
		t.Fatal(err)
	}
	if wb.ResourceType != "Bundle" || wb.Type != "transaction" || len(wb.Entry) != 3 {
		t.Fatalf("readBundle = %+v", wb)
	}
	e := wb.Entry[0]
	if e.FullURL != "urn:uuid:2e2a6b4c-0a3c-4b5e-9c1d-3f1e2d4c5b6a" || e.Request == nil ||
		*e.Request != (wireRequest{Method: "POST", URL: "Patient", IfNoneExist: "identifier=a|b&name=x"}) {
		t.Errorf("entry[0] = %q, %+v", e.FullURL, e.Request)
	}
	if want := `{"resourceType":"Patient","name":[{"family":"O'Brien \"Jr\""}]}`; string(e.Resource) != want {
		t.Errorf("entry[0].resource = %s, want %s", e.Resource, want)
	}
	if e := wb.Entry[1]; e.Request != nil || e.Resource != nil {
		t.Errorf("a null entry = %+v", e)
	}
	if e := wb.Entry[2]; e.Request != nil || e.Resource != nil { // "Resource" is not "resource"
		t.Errorf("entry[2] = %+v", e)
	}
	for body, want := range map[string]string{
		`{"resourceType":"Bundle","type":3}`:                                             "type is not a string",
		`{"resourceType":"Bundle","entry":{}}`:                                           "entry is not an array",
		`{"resourceType":"Bundle","entry":[null,"x"]}`:                                   "entry[1] is not an object",
		`{"resourceType":"Bundle","entry":[{"request":[]}]}`:                             "entry[0].request is not an object",
		`{"resourceType":"Bundle","entry":[{},{"request":{"method":"GET","url":true}}]}`: "entry[1].request.url is not a string",
		`{"resourceType":"Bundle","entry":[{"fullUrl":{}}]}`:                             "entry[0].fullUrl is not a string",
		`{"resourceType":"Bundle","type":"batch","type":"transaction"}`:                  `duplicate JSON member "type"`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]`:     "not valid JSON",
		"{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"text\":\"\xff\"}}]}":   "not valid UTF-8",
	} {
		if _, err := readBundle([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readBundle(%s) error = %v, want one saying %q", body, err, want)
		}
	}
}

// FuzzReadBundle: on any input the reader errs or not but never panics, and
// whatever resources it hands on are compact JSON.
func FuzzReadBundle(f *testing.F) {
	for _, s := range []string{txBundle, `{"resourceType":"Bundle","entry":[null,{"request":null}]}`, ` { "entry" : [ { "resource" : { "a" : [ 1 , "\u0022" ] } } ] } `, `{"entry":[,]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wb, err := readBundle(data)
		if err != nil {
			return
		}
		for i, e := range wb.Entry {
			if e.Resource == nil {
				continue
			}
			var b bytes.Buffer
			if err := json.Compact(&b, e.Resource); err != nil || !bytes.Equal(b.Bytes(), e.Resource) {
				t.Fatalf("readBundle(%q): entry[%d].resource %q is not compact JSON (%v)", data, i, e.Resource, err)
			}
		}
	})
}

func TestPatchEntry(t *testing.T) {
	body := `{"resourceType":"Bundle","type":"batch","entry":[
	 {"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"W10="},"request":{"method":"PATCH","url":"Patient/1"}},
	 {"resource":{"resourceType":"Parameters"},"request":{"method":"PATCH","url":"Patient/1"}}]}`
	rec := &recorder{}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}
	_, resp, err := p.Process(context.Background(), []byte(body), Representation)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 1 || string(rec.calls[0].Resource) != "[]" {
		t.Fatalf("calls %v", rec.calls)
	}
	if !strings.Contains(string(resp), `"status":"400 Bad Request"`) {
		t.Errorf("FHIRPath Patch entry not refused: %s", resp)
	}
}

func FuzzBundle(f *testing.F) {
	f.Add(fmt.Appendf(nil, txBundle, "transaction"))
	f.Add(fmt.Appendf(nil, txBundle, "batch"))
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"W10="},"request":{"method":"PATCH","url":"Patient/1"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:oid:1.2","resource":{"resourceType":"Patient","contained":[{"a":[[{"reference":"urn:oid:1.2"}]]}]},"request":{"method":"POST","url":"Patient"}}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := &Processor{Store: fakeStore{}, Exec: &recorder{}, NewID: counter()}
		_, resp, err := p.Process(context.Background(), body, Representation)
		if err == nil && !json.Valid(resp) {
			t.Fatalf("response is not JSON: %s", resp)
		}
		if err != nil && fhir.ErrorCode(err) == fhir.Internal {
			t.Fatalf("untrusted input caused an internal error: %v", err)
		}
	})
}

// TestPreparedHook: Options.Prepared runs once, after parsing and before
// the first entry executes, for transactions and batches alike; a Bundle
// that fails to parse never calls it.
func TestPreparedHook(t *testing.T) {
	for _, kind := range []string{"transaction", "batch"} {
		t.Run(kind, func(t *testing.T) {
			rec := &recorder{}
			p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}
			var calls, executedBefore int
			_, err := p.Run(context.Background(), fmt.Appendf(nil, txBundle, kind), Options{Prepared: func() {
				calls++
				executedBefore = len(rec.calls)
			}})
			if err != nil {
				t.Fatal(err)
			}
			if calls != 1 || executedBefore != 0 || len(rec.calls) != 5 {
				t.Errorf("Prepared called %d times, after %d of %d entries executed; want once, before any", calls, executedBefore, len(rec.calls))
			}
		})
	}
	p := &Processor{Store: fakeStore{}, Exec: &recorder{}, NewID: counter()}
	called := false
	if _, err := p.Run(context.Background(), []byte(`{"resourceType":"Patient"}`), Options{Prepared: func() { called = true }}); err == nil || called {
		t.Errorf("a Bundle that does not parse: err %v, Prepared called %v; want an error and no call", err, called)
	}
}
