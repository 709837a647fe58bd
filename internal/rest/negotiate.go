package rest

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
)

// The media types of FHIR JSON (http.html §3.1.0.1.7).
const (
	mediaFHIRJSON  = "application/fhir+json"
	mediaJSON      = "application/json"
	mediaJSONPatch = "application/json-patch+json"
)

// Header values shared by every response; net/http only reads them.
var (
	contentTypeFHIR = []string{mediaFHIRJSON + "; charset=utf-8"}
)

// negotiate checks that the client accepts JSON: _format wins over Accept
// (http.html §3.1.0.1.7). Anything else is 406.
func negotiate(c *call) error {
	if c.query != nil {
		if f, ok := c.query["_format"]; ok && len(f) > 0 {
			switch strings.ToLower(strings.TrimSpace(f[0])) {
			case "json", mediaJSON, mediaFHIRJSON, "text/json":
				return nil
			}
			return fhir.Errorf(fhir.NotAcceptable, "_format=%s is not supported: this server speaks JSON only", f[0])
		}
	}
	accept := c.r.Header.Get("Accept")
	if accept == "" || acceptsJSON(accept) {
		return nil
	}
	return fhir.Errorf(fhir.NotAcceptable, "the Accept header %q excludes JSON: this server produces application/fhir+json only", accept)
}

// acceptsJSON reports whether an Accept header admits FHIR JSON. It does
// not allocate for the common single-value headers.
func acceptsJSON(accept string) bool {
	for accept != "" {
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.TrimSpace(mt)
		if zeroQ(params) {
			continue
		}
		switch {
		case strings.EqualFold(mt, mediaFHIRJSON), strings.EqualFold(mt, mediaJSON),
			mt == "*/*", strings.EqualFold(mt, "application/*"), strings.EqualFold(mt, "text/json"):
			return true
		}
	}
	return false
}

// zeroQ reports whether media-type parameters say q=0 (not acceptable).
func zeroQ(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			return strings.Trim(v, "0.") == "" && v != ""
		}
	}
	return false
}

// readBody checks the Content-Type and reads the request body within the
// size limit. patch says whether the body is a JSON Patch document.
func (a *API) readBody(c *call, patch bool) ([]byte, error) {
	ct := c.r.Header.Get("Content-Type")
	if ct == "" {
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "the request has no Content-Type; send %s", wantType(patch))
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "the Content-Type %q is malformed", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "charset %q is not supported; send UTF-8", cs)
	}
	switch {
	case patch && mt == mediaJSONPatch:
	case patch && (mt == mediaFHIRJSON || mt == mediaJSON):
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "FHIRPath Patch is not supported; send a JSON Patch as %s", mediaJSONPatch)
	case !patch && (mt == mediaFHIRJSON || mt == mediaJSON):
	case strings.Contains(mt, "xml"):
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "XML is not supported; send %s", wantType(patch))
	default:
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "the Content-Type %q is not supported; send %s", mt, wantType(patch))
	}
	if a.cfg.MaxBodyBytes > 0 && c.r.ContentLength > a.cfg.MaxBodyBytes {
		return nil, tooLarge(a.cfg.MaxBodyBytes)
	}
	var rd io.Reader = c.r.Body
	if a.cfg.MaxBodyBytes > 0 {
		rd = http.MaxBytesReader(c.w, c.r.Body, a.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge(a.cfg.MaxBodyBytes)
		}
		return nil, fhir.Errorf(fhir.Invalid, "reading the request body: %v", err)
	}
	if len(body) == 0 {
		return nil, fhir.Errorf(fhir.Invalid, "the request body is empty")
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return fhir.Errorf(fhir.TooLarge, "the request body is larger than %d bytes", limit)
}

func wantType(patch bool) string {
	if patch {
		return mediaJSONPatch
	}
	return mediaFHIRJSON
}

// preferReturn reads Prefer: return= (http.html §3.1.0.8.3); the default is
// the representation.
func preferReturn(r *http.Request) bundle.Return {
	for _, v := range r.Header.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) != "return" {
				continue
			}
			switch strings.Trim(strings.TrimSpace(val), `"`) {
			case "minimal":
				return bundle.Minimal
			case "OperationOutcome":
				return bundle.OperationOutcome
			case "representation":
				return bundle.Representation
			}
		}
	}
	return bundle.Representation
}
