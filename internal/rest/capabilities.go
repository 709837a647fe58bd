package rest

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir/spec"
)

// capabilities is GET [base]/metadata (http.html §3.1.0.10): the
// CapabilityStatement, rendered once at start.
func (a *API) capabilities(c *call) error {
	a.writeBody(c, http.StatusOK, a.caps)
	return nil
}

type code struct {
	Code string `json:"code"`
}

type capResource struct {
	Type              string        `json:"type"`
	Interaction       []code        `json:"interaction"`
	Versioning        string        `json:"versioning"`
	ReadHistory       bool          `json:"readHistory"`
	UpdateCreate      bool          `json:"updateCreate"`
	ConditionalCreate bool          `json:"conditionalCreate"`
	ConditionalRead   string        `json:"conditionalRead"`
	ConditionalUpdate bool          `json:"conditionalUpdate"`
	ConditionalDelete string        `json:"conditionalDelete"`
	SupportedProfile  []string      `json:"supportedProfile,omitempty"`
	SearchInclude     []string      `json:"searchInclude,omitempty"`
	SearchRevInclude  []string      `json:"searchRevInclude,omitempty"`
	SearchParam       []searchParam `json:"searchParam,omitempty"`
}

type searchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// usCoreServer is the CapabilityStatement this server's search claims to
// implement (US Core 6.1.0 §CapabilityStatement-us-core-server).
const usCoreServer = "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server|6.1.0"

// addSearch fills the search part of each resource entry
// (capabilitystatement.html rest.resource.searchParam, searchInclude,
// searchRevInclude) from the registry, and the US Core profiles of each
// type in supportedProfile.
func (a *API) addSearch(resources []capResource) {
	profiles := map[string][]string{}
	for _, p := range spec.USCoreProfiles() {
		profiles[p.Type] = append(profiles[p.Type], p.URL)
	}
	reg := a.cfg.Search
	for i := range resources {
		r := &resources[i]
		r.SupportedProfile = profiles[r.Type]
		r.Interaction = append(slices.Clone(r.Interaction), code{"search-type"})
		r.ConditionalCreate, r.ConditionalUpdate = ConditionalCapabilities.Create, ConditionalCapabilities.Update
		r.ConditionalDelete = ConditionalCapabilities.Delete
		for _, p := range reg.Params(r.Type) {
			r.SearchParam = append(r.SearchParam, searchParam{Name: p.Code, Definition: p.URL, Type: p.Type})
		}
		r.SearchInclude = []string{"*"}
		for _, p := range reg.ReferenceParams(r.Type) {
			r.SearchInclude = append(r.SearchInclude, r.Type+":"+p)
		}
		r.SearchRevInclude = []string{"*"}
		for _, src := range a.supportedTypes() {
			for _, code := range reg.ReferenceParams(src) {
				if p := reg.Param(src, code); len(p.Targets) == 0 || slices.Contains(p.Targets, r.Type) {
					r.SearchRevInclude = append(r.SearchRevInclude, src+":"+code)
				}
			}
		}
	}
}

// capabilityStatement describes what this API really does
// (capabilitystatement.html): the interactions of every served type, the
// system interactions, JSON only, JSON Patch, and, when search is
// configured, the search parameters, includes and US Core profiles of every
// type with instantiates us-core-server 6.1.0.
func (a *API) capabilityStatement(date time.Time) []byte {
	interactions := []code{{"read"}, {"vread"}, {"update"}, {"patch"}, {"delete"},
		{"history-instance"}, {"history-type"}, {"create"}}
	types := a.supportedTypes()
	resources := make([]capResource, len(types))
	for i, t := range types {
		// A read answers If-None-Match and If-Modified-Since (read.go);
		// conditional create, update and delete need search (addSearch).
		resources[i] = capResource{Type: t, Interaction: interactions, Versioning: "versioned",
			ReadHistory: true, UpdateCreate: true, ConditionalRead: "full-support", ConditionalDelete: "not-supported"}
	}
	var instantiates []string
	if a.cfg.Search != nil {
		a.addSearch(resources)
		instantiates = []string{usCoreServer}
	}
	if a.cfg.AuditLog != nil {
		for i, r := range resources {
			if r.Type == "AuditEvent" {
				resources[i] = auditCapability()
			}
		}
	}
	type rest struct {
		Mode        string          `json:"mode"`
		Security    json.RawMessage `json:"security,omitempty"`
		Resource    []capResource   `json:"resource"`
		Interaction []code          `json:"interaction"`
	}
	cs := struct {
		ResourceType string   `json:"resourceType"`
		Instantiates []string `json:"instantiates,omitempty"`
		Status       string   `json:"status"`
		Date         string   `json:"date"`
		Kind         string   `json:"kind"`
		Software     struct {
			Name    string `json:"name"`
			Version string `json:"version,omitempty"`
		} `json:"software"`
		Implementation struct {
			Description string `json:"description"`
			URL         string `json:"url"`
		} `json:"implementation"`
		FHIRVersion string   `json:"fhirVersion"`
		Format      []string `json:"format"`
		PatchFormat []string `json:"patchFormat"`
		Rest        []rest   `json:"rest"`
	}{
		ResourceType: "CapabilityStatement",
		Instantiates: instantiates,
		Status:       "active",
		Date:         date.UTC().Format(time.RFC3339),
		Kind:         "instance",
		FHIRVersion:  "4.0.1",
		Format:       []string{"json", mediaFHIRJSON},
		PatchFormat:  []string{mediaJSONPatch},
		Rest: []rest{{Mode: "server", Security: a.cfg.Security, Resource: resources,
			Interaction: []code{{"transaction"}, {"batch"}, {"history-system"}}}},
	}
	cs.Software.Name, cs.Software.Version = a.cfg.Software.Name, a.cfg.Software.Version
	cs.Implementation.Description = "FHIR R4 server at " + a.cfg.Base
	cs.Implementation.URL = a.cfg.Base
	b, err := json.Marshal(cs)
	if err != nil { // only strings and bools: cannot happen
		panic(err)
	}
	return b
}

// auditCapability is the AuditEvent entry when the type is the audit
// log: read and search, for administrators, with its own parameters.
func auditCapability() capResource {
	r := capResource{Type: "AuditEvent", Interaction: []code{{"read"}, {"search-type"}},
		Versioning: "no-version", ConditionalRead: "not-supported", ConditionalDelete: "not-supported"}
	for _, p := range audit.SearchParams() {
		r.SearchParam = append(r.SearchParam, searchParam{Name: p[0], Type: p[1], Documentation: p[2],
			Definition: "http://hl7.org/fhir/SearchParameter/AuditEvent-" + p[0]})
	}
	return r
}
