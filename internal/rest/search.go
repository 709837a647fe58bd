package rest

import "smartfhir/internal/fhir"

// searchType is GET [base]/[type]?… and POST [base]/[type]/_search
// (http.html §3.1.0.8). Search is not implemented yet; answering with an
// explicit not-supported outcome keeps clients from mistaking an empty
// result for "no matches".
func (a *API) searchType(c *call) error {
	return fhir.Errorf(fhir.NotSupported, "search on %s is not supported by this server yet", c.typ)
}

// searchSystem is GET [base]?… (http.html §3.1.0.8).
func (a *API) searchSystem(c *call) error {
	return fhir.Errorf(fhir.NotSupported, "system-wide search is not supported by this server yet")
}
