package bundle

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"smartfhir/internal/fhir"
)

// resolve gives every POST entry its server id up front (so that the ids
// stay the same when a unit of work is retried) and rewrites every
// reference to an entry's urn:uuid: or urn:oid: fullUrl into a reference
// to the resource it becomes (http.html §3.1.0.11.2).
func (b *parsed) resolve(newID func() string) error {
	targets := map[string]string{}
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil {
			continue
		}
		switch e.req.Method {
		case http.MethodPost:
			e.req.ID = newID()
			if isURN(e.fullURL) {
				targets[e.fullURL] = e.typ + "/" + e.req.ID
			}
		case http.MethodPut:
			if isURN(e.fullURL) {
				path, _, _ := strings.Cut(e.req.URL, "?")
				if r, ok := fhir.ParseReference(path, ""); ok && !strings.Contains(e.req.URL, "?") {
					targets[e.fullURL] = r.Type + "/" + r.ID
				}
			}
		}
	}
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil || e.req.Resource == nil || e.req.Method == http.MethodPatch {
			continue
		}
		raw, err := rewrite(e.req.Resource, targets)
		if err != nil {
			return invalid("Bundle.entry[%d].resource: %v", i, err)
		}
		e.req.Resource = raw
	}
	return nil
}

type unknownRef string

func (u unknownRef) Error() string {
	return "the reference " + string(u) + " names no entry of the Bundle"
}

var urnPrefix = []byte(`"urn:`)

// rewrite replaces the value of every "reference" member whose value is a
// urn:uuid: or urn:oid: with its target, at any depth (contained resources
// and extensions included). Everything else, member order included, is left
// as it was; a resource without a URN in it is returned as it is.
func rewrite(raw []byte, targets map[string]string) ([]byte, error) {
	if !bytes.Contains(raw, urnPrefix) {
		return raw, nil
	}
	out, _, err := rewriteValue(raw, targets)
	return out, err
}

func rewriteValue(raw json.RawMessage, targets map[string]string) (json.RawMessage, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !bytes.Contains(raw, urnPrefix) {
		return raw, false, nil
	}
	switch raw[0] {
	case '{':
		obj, err := fhir.ParseObject(raw)
		if err != nil {
			return nil, false, err
		}
		changed := false
		for k := range obj {
			m := &obj[k]
			if m.Name == "reference" {
				if s, ok := fhir.String(m.Value); ok && isURN(s) {
					t, ok := targets[s]
					if !ok {
						return nil, false, unknownRef(s)
					}
					m.Value, _ = json.Marshal(t)
					changed = true
				}
				continue
			}
			v, c, err := rewriteValue(m.Value, targets)
			if err != nil {
				return nil, false, err
			}
			if c {
				m.Value, changed = v, true
			}
		}
		if !changed {
			return raw, false, nil
		}
		b, err := obj.MarshalJSON()
		return b, true, err
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, err
		}
		changed := false
		for k, it := range items {
			v, c, err := rewriteValue(it, targets)
			if err != nil {
				return nil, false, err
			}
			if c {
				items[k], changed = v, true
			}
		}
		if !changed {
			return raw, false, nil
		}
		var buf bytes.Buffer
		buf.WriteByte('[')
		for k, it := range items {
			if k > 0 {
				buf.WriteByte(',')
			}
			buf.Write(it)
		}
		buf.WriteByte(']')
		return buf.Bytes(), true, nil
	}
	return raw, false, nil
}
