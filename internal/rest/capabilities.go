package rest

import (
	"encoding/json"
	"net/http"
	"time"
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
	Type              string `json:"type"`
	Interaction       []code `json:"interaction"`
	Versioning        string `json:"versioning"`
	ReadHistory       bool   `json:"readHistory"`
	UpdateCreate      bool   `json:"updateCreate"`
	ConditionalCreate bool   `json:"conditionalCreate"`
	ConditionalRead   string `json:"conditionalRead"`
	ConditionalUpdate bool   `json:"conditionalUpdate"`
	ConditionalDelete string `json:"conditionalDelete"`
}

// capabilityStatement describes what this API really does
// (capabilitystatement.html): the interactions of every served type, the
// system interactions, JSON only, JSON Patch. Conditional interactions and
// search are not offered (yet), so they are not claimed.
func (a *API) capabilityStatement(date time.Time) []byte {
	interactions := []code{{"read"}, {"vread"}, {"update"}, {"patch"}, {"delete"},
		{"history-instance"}, {"history-type"}, {"create"}}
	types := a.supportedTypes()
	resources := make([]capResource, len(types))
	for i, t := range types {
		resources[i] = capResource{Type: t, Interaction: interactions, Versioning: "versioned",
			ReadHistory: true, UpdateCreate: true, ConditionalRead: "not-supported", ConditionalDelete: "not-supported"}
	}
	type rest struct {
		Mode        string        `json:"mode"`
		Resource    []capResource `json:"resource"`
		Interaction []code        `json:"interaction"`
	}
	cs := struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
		Date         string `json:"date"`
		Kind         string `json:"kind"`
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
		Status:       "active",
		Date:         date.UTC().Format(time.RFC3339),
		Kind:         "instance",
		FHIRVersion:  "4.0.1",
		Format:       []string{"json", mediaFHIRJSON},
		PatchFormat:  []string{mediaJSONPatch},
		Rest: []rest{{Mode: "server", Resource: resources,
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
