package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"smartfhir/internal/fhir"
)

type parsed struct {
	kind    string
	entries []entry
	// targets maps the urn:uuid: and urn:oid: fullUrls of entries to the
	// references they become (assignIDs).
	targets map[string]string
}

type entry struct {
	fullURL string
	req     Request
	// typ is the resource's resourceType (POST, PUT).
	typ string
	// err, when set, is why the entry cannot run; a batch reports it in
	// the entry's response, a transaction fails with it.
	err error
	// prepared is what Preparer.Prepare made of the resource as it is
	// expected to be once its references are resolved (nil for none).
	prepared any
}

// wireBundle is what parse reads of a Bundle: its type and, per entry, the
// fullUrl, the resource (compact JSON) and the request.
type wireBundle struct {
	ResourceType string
	Type         string
	Entry        []wireEntry
}

type wireEntry struct {
	FullURL  string
	Resource []byte
	Request  *wireRequest
}

type wireRequest struct {
	Method, URL, IfNoneMatch, IfModifiedSince, IfMatch, IfNoneExist string
}

// readBundle reads a Bundle's JSON. fhir.ParseObject checks and compacts
// the whole body in one pass (where encoding/json checked it, then decoded
// it), so the resources it hands on are compact: the passes that follow
// until a resource is prepared (its header, reference rewriting, the
// preparation's own check) read about a third fewer bytes of the
// pretty-printed Bundles that clients and Synthea send. Member names are
// matched exactly, as FHIR's JSON format has them.
func readBundle(body []byte) (wireBundle, error) {
	var wb wireBundle
	obj, err := fhir.ParseObject(body)
	if err != nil {
		return wb, err
	}
	if wb.ResourceType, err = jsonString(obj.Get("resourceType"), "resourceType"); err != nil {
		return wb, err
	}
	if wb.Type, err = jsonString(obj.Get("type"), "type"); err != nil {
		return wb, err
	}
	entries := obj.Get("entry")
	if entries == nil || string(entries) == "null" {
		return wb, nil
	}
	if entries[0] != '[' {
		return wb, fmt.Errorf("entry is not an array")
	}
	err = fhir.CompactElements(entries, func(i int, v []byte) error {
		var we wireEntry
		if v[0] != '{' {
			if string(v) != "null" {
				return fmt.Errorf("entry[%d] is not an object", i)
			}
			wb.Entry = append(wb.Entry, we)
			return nil
		}
		err := fhir.CompactMembers(v, func(name string, v []byte) (err error) {
			switch name {
			case "fullUrl":
				we.FullURL, err = jsonString(v, fmt.Sprintf("entry[%d].fullUrl", i))
			case "resource":
				we.Resource = v
			case "request":
				we.Request, err = readRequest(v, i)
			}
			return err
		})
		wb.Entry = append(wb.Entry, we)
		return err
	})
	return wb, err
}

func readRequest(v []byte, entry int) (*wireRequest, error) {
	if string(v) == "null" {
		return nil, nil
	}
	if v[0] != '{' {
		return nil, fmt.Errorf("entry[%d].request is not an object", entry)
	}
	r := &wireRequest{}
	fields := map[string]*string{"method": &r.Method, "url": &r.URL, "ifNoneMatch": &r.IfNoneMatch,
		"ifModifiedSince": &r.IfModifiedSince, "ifMatch": &r.IfMatch, "ifNoneExist": &r.IfNoneExist}
	err := fhir.CompactMembers(v, func(name string, v []byte) error {
		f := fields[name]
		if f == nil {
			return nil
		}
		var err error
		*f, err = jsonString(v, fmt.Sprintf("entry[%d].request.%s", entry, name))
		return err
	})
	return r, err
}

// jsonString is the string a compact JSON value holds: "" for none or
// null, an error naming the element for anything but a string.
func jsonString(v []byte, element string) (string, error) {
	if v == nil || string(v) == "null" {
		return "", nil
	}
	if s, ok := fhir.String(v); ok {
		return s, nil
	}
	return "", fmt.Errorf("%s is not a string", element)
}

func invalid(format string, args ...any) error { return fhir.Errorf(fhir.Invalid, format, args...) }

// parse checks the Bundle as a whole (http.html §3.1.0.11). Problems with a
// single entry's resource are kept on the entry, so that a batch can answer
// them there.
func parse(body []byte) (*parsed, error) {
	wb, err := readBundle(body)
	if err != nil {
		return nil, invalid("the request body is not a valid Bundle: %v", err)
	}
	if wb.ResourceType != "Bundle" {
		return nil, invalid("POST to the base URL takes a Bundle, not %q", wb.ResourceType)
	}
	b := &parsed{}
	switch wb.Type {
	case "batch", "transaction":
		b.kind = wb.Type
	default:
		return b, invalid("Bundle.type must be batch or transaction, not %q", wb.Type)
	}
	b.entries = make([]entry, len(wb.Entry))
	fullURLs := make(map[string]int, len(wb.Entry))
	for i, we := range wb.Entry {
		e := &b.entries[i]
		e.fullURL = we.FullURL
		if we.Request == nil {
			return b, invalid("Bundle.entry[%d] has no request", i)
		}
		r := we.Request
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			return b, invalid("Bundle.entry[%d].request.method %q is not GET, HEAD, POST, PUT, PATCH or DELETE", i, r.Method)
		}
		if r.URL == "" {
			return b, invalid("Bundle.entry[%d].request.url is missing", i)
		}
		if we.FullURL != "" {
			if j, dup := fullURLs[we.FullURL]; dup {
				return b, invalid("Bundle.entry[%d] and Bundle.entry[%d] have the same fullUrl %q", j, i, we.FullURL)
			}
			fullURLs[we.FullURL] = i
			if isURN(we.FullURL) && !validURN(we.FullURL) {
				return b, invalid("Bundle.entry[%d].fullUrl %q is not a valid urn:uuid: or urn:oid:", i, we.FullURL)
			}
		}
		e.req = Request{Index: i, Method: r.Method, URL: r.URL, IfMatch: r.IfMatch, IfNoneMatch: r.IfNoneMatch,
			IfModifiedSince: r.IfModifiedSince, IfNoneExist: r.IfNoneExist}
		hasResource := len(we.Resource) > 0 && !bytes.Equal(we.Resource, []byte("null"))
		switch r.Method {
		case http.MethodPost, http.MethodPut:
			if !hasResource {
				e.err = invalid("Bundle.entry[%d] (%s) has no resource", i, r.Method)
				continue
			}
			h, err := fhir.ScanHeader(we.Resource) // readBundle has checked and compacted it
			if err != nil {
				e.err = err
				continue
			}
			e.typ = h.ResourceType
			e.req.Resource = we.Resource
		case http.MethodPatch:
			if !hasResource {
				e.err = invalid("Bundle.entry[%d] (PATCH) has no resource", i)
				continue
			}
			e.req.Resource, e.err = patchDocument(we.Resource)
		default:
			if hasResource {
				e.err = invalid("Bundle.entry[%d] (%s) must not have a resource", i, r.Method)
			}
		}
	}
	return b, nil
}

// patchDocument takes the JSON Patch out of a PATCH entry: FHIR R4 carries
// it as a Binary with contentType application/json-patch+json
// (http.html §3.1.0.7.1). A FHIRPath Patch (Parameters) is not supported.
func patchDocument(res json.RawMessage) ([]byte, error) {
	var bin struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	if err := json.Unmarshal(res, &bin); err != nil {
		return nil, invalid("the PATCH entry's resource is not valid: %v", err)
	}
	if bin.ResourceType != "Binary" {
		return nil, fhir.Errorf(fhir.NotSupported, "a PATCH entry takes a Binary holding a JSON Patch; %s is not supported", bin.ResourceType)
	}
	if ct, _, _ := strings.Cut(bin.ContentType, ";"); strings.TrimSpace(ct) != "application/json-patch+json" {
		return nil, fhir.Errorf(fhir.UnsupportedMediaType, "the PATCH entry's Binary.contentType must be application/json-patch+json, not %q", bin.ContentType)
	}
	doc, err := base64.StdEncoding.DecodeString(bin.Data)
	if err != nil {
		return nil, invalid("the PATCH entry's Binary.data is not base64: %v", err)
	}
	return doc, nil
}

func validURN(s string) bool {
	rest, ok := strings.CutPrefix(s, "urn:uuid:")
	if ok {
		// RFC 4122 textual form; the case of hex digits is not checked.
		if len(rest) != 36 {
			return false
		}
		for i, c := range rest {
			switch i {
			case 8, 13, 18, 23:
				if c != '-' {
					return false
				}
			default:
				if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
					return false
				}
			}
		}
		return true
	}
	rest, _ = strings.CutPrefix(s, "urn:oid:")
	if rest == "" {
		return false
	}
	for _, part := range strings.Split(rest, ".") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}

func (b *parsed) anyIfMatch() bool {
	for _, e := range b.entries {
		if e.req.IfMatch != "" {
			return true
		}
	}
	return false
}
