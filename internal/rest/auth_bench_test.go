package rest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"smartfhir/internal/access"
	"smartfhir/internal/audit"
	"smartfhir/internal/rest"
)

// fixedAuth answers every bearer token with one policy, as a cached token
// check does.
type fixedAuth struct{ p *access.Policy }

func (f fixedAuth) Authenticate(context.Context, string) (*access.Policy, error) { return f.p, nil }

// dropAudit takes audit events and forgets them.
type dropAudit struct{}

func (dropAudit) Record(audit.Event) error { return nil }

// benchPatient is a US Core Patient of realistic size (names, telecom,
// address, identifiers, extensions).
const benchPatient = `{"resourceType":"Patient","id":"p1","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]},
{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}],
"identifier":[{"system":"http://hospital.smarthealthit.org","value":"1032702"},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"SS"}]},"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-47-5984"}],
"active":true,"name":[{"use":"official","family":"Shaw","given":["Amy","V."],"period":{"start":"1987-02-20"}},{"use":"maiden","family":"Baxter","given":["Amy","V."]}],
"telecom":[{"system":"phone","value":"555-555-5555","use":"home"},{"system":"email","value":"amy.shaw@example.com"}],
"gender":"female","birthDate":"1987-02-20",
"address":[{"use":"home","line":["49 Meadow St"],"city":"Mounds","state":"OK","postalCode":"74047","country":"US","period":{"start":"1987-02-20"}}],
"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en"}]}}]}`

// BenchmarkReadWithPolicy is a read by id through the handler with no
// authentication, a token that sees everything, and a patient token that
// must be checked against the resource's compartment.
func BenchmarkReadWithPolicy(b *testing.B) {
	scopes, err := access.ParseSet("patient/*.rs")
	if err != nil {
		b.Fatal(err)
	}
	system, err := access.ParseSet("system/*.rs")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		auth rest.Authenticator
	}{
		{"open", nil},
		{"system", fixedAuth{access.NewPolicy(access.Grant{Scopes: system})}},
		{"patient", fixedAuth{access.NewPolicy(access.Grant{Scopes: scopes, Patient: "p1"})}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := newMemStore()
			cfg := rest.Config{Base: "http://x/fhir", Store: st, ResourceTypes: types, NewID: newID, Search: testRegistry()}
			put := httptest.NewRequest("PUT", "/fhir/Patient/p1", strings.NewReader(benchPatient))
			put.Header.Set("Content-Type", "application/fhir+json")
			w := httptest.NewRecorder()
			rest.New(cfg).ServeHTTP(w, put)
			if w.Code != 201 {
				b.Fatalf("PUT = %d %s", w.Code, w.Body)
			}
			cfg.Auth = bc.auth
			if bc.auth != nil {
				cfg.Audit = dropAudit{}
			}
			api := rest.New(cfg)
			read := httptest.NewRequest("GET", "/fhir/Patient/p1", nil)
			read.Header.Set("Authorization", "Bearer x")
			d := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(d.h)
				api.ServeHTTP(d, read)
			}
			if d.status != 200 {
				b.Fatalf("read = %d", d.status)
			}
		})
	}
}
