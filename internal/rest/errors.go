package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"smartfhir/internal/fhir"
	"smartfhir/internal/reqctx"
)

// writeError is the one place where an error becomes a response: an
// OperationOutcome with the status of the error's code (fhir.Status).
// Internal errors are logged with the request id and shown to the client
// only as a generic message.
func (a *API) writeError(c *call, err error) {
	code := fhir.ErrorCode(err)
	if code == fhir.Internal && c.r.Context().Err() != nil {
		// The client went away (or the server is shutting down) while the
		// request was in flight: nobody reads this answer and it is not a
		// server fault worth an error line.
		reqctx.Logger(c.r.Context()).Debug("FHIR request abandoned", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	} else if code == fhir.Internal {
		reqctx.Logger(c.r.Context()).Error("FHIR request failed", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	}
	h := c.w.Header()
	if code == fhir.Forbidden && a.cfg.Auth != nil {
		// RFC 6750 §3.1: the token is valid but its scopes fall short.
		h.Set("WWW-Authenticate", `Bearer realm="`+a.cfg.Base+`", error="insufficient_scope"`)
	}
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Del("Location")
	h.Del("Content-Location")
	a.writeBody(c, fhir.Status(code), fhir.ErrorOutcome(err))
}

// writeBody writes a JSON response body, indented when _pretty=true.
func (a *API) writeBody(c *call, status int, body []byte) {
	if c.pretty {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	h := c.w.Header()
	h["Content-Type"] = contentTypeFHIR
	// The length up front: without it net/http sends any body over 2 KB
	// chunked.
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		_, _ = c.w.Write(body) // the client went away: nothing to do
	}
}
