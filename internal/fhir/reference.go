package fhir

import (
	"regexp"
	"strconv"
	"strings"
)

// Reference is a parsed literal reference to a resource on this server.
type Reference struct {
	Type    string
	ID      string
	Version int64 // 0 when the reference is not to a version
}

func (r Reference) String() string {
	s := r.Type + "/" + r.ID
	if r.Version > 0 {
		s += "/_history/" + strconv.FormatInt(r.Version, 10)
	}
	return s
}

var refPattern = regexp.MustCompile(`^([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/([0-9]{1,18}))?$`)

// ParseReference parses "Type/id" or "Type/id/_history/vid". An absolute
// reference is accepted when it starts with base (the server's FHIR base URL,
// without a trailing slash); ok is false for anything else (other servers,
// contained "#x" references, urn:uuid: and conditional references).
func ParseReference(ref, base string) (r Reference, ok bool) {
	if base != "" && strings.HasPrefix(ref, base+"/") {
		ref = ref[len(base)+1:]
	}
	m := refPattern.FindStringSubmatch(ref)
	if m == nil {
		return r, false
	}
	r.Type, r.ID = m[1], m[2]
	if m[4] != "" {
		v, err := strconv.ParseInt(m[4], 10, 64)
		if err != nil || v < 1 {
			return Reference{}, false
		}
		r.Version = v
	}
	return r, true
}
