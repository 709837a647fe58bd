package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Resource is the envelope of one stored resource version: what the server
// needs to know about it without decoding the body, and the body itself.
// Raw is the exact JSON that is served; it already carries id and meta.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Raw         []byte
}

// ETag is the weak entity tag of a version, as FHIR http.html §3.1.0.4 says.
func ETag(versionID int64) string { return `W/"` + strconv.FormatInt(versionID, 10) + `"` }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`)

// ValidID reports whether s is a valid FHIR logical id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Member is one name/value pair of a JSON object, in document order.
type Member struct {
	Name  string
	Value json.RawMessage
}

// Object is a JSON object with its member order kept, so that rewriting a
// resource (to set its id and meta) leaves everything else where it was.
type Object []Member

// ParseObject decodes a JSON object, keeping member order. It rejects
// anything that is not a single object, and duplicate member names.
func ParseObject(data []byte) (Object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var obj Object
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, fmt.Errorf("duplicate JSON member %q", name)
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		obj = append(obj, Member{name, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("not valid JSON: data after the object")
	}
	return obj, nil
}

// Get returns the value of the named member, or nil.
func (o Object) Get(name string) json.RawMessage {
	for _, m := range o {
		if m.Name == name {
			return m.Value
		}
	}
	return nil
}

// Set replaces the named member's value, or appends the member.
func (o *Object) Set(name string, v json.RawMessage) {
	for i := range *o {
		if (*o)[i].Name == name {
			(*o)[i].Value = v
			return
		}
	}
	*o = append(*o, Member{name, v})
}

// Delete removes the named member.
func (o *Object) Delete(name string) {
	for i := range *o {
		if (*o)[i].Name == name {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return
		}
	}
}

// MarshalJSON writes the object compactly, members in order.
func (o Object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(m.Name)
		buf.Write(name)
		buf.WriteByte(':')
		if err := json.Compact(&buf, m.Value); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// String unquotes a JSON string value; ok is false when v is not a string.
func String(v json.RawMessage) (s string, ok bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	return s, json.Unmarshal(v, &s) == nil
}

// Header is what the server reads from a resource body before storing it.
type Header struct {
	ResourceType string
	ID           string
}

// ReadHeader returns the resourceType and id of a resource body.
func ReadHeader(raw []byte) (Header, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return Header{}, Errorf(Invalid, "%v", err)
	}
	return obj.header()
}

func (o Object) header() (Header, error) {
	var h Header
	rt := o.Get("resourceType")
	if rt == nil {
		return h, Errorf(Invalid, "the resource has no resourceType")
	}
	var ok bool
	if h.ResourceType, ok = String(rt); !ok {
		return h, Errorf(Invalid, "resourceType is not a string")
	}
	if id := o.Get("id"); id != nil {
		if h.ID, ok = String(id); !ok {
			return h, Errorf(Invalid, "id is not a string")
		}
	}
	return h, nil
}

// Stamp returns raw with its id, meta.versionId and meta.lastUpdated set
// by the server, in compact form with resourceType, id and meta first and
// every other member in its original order. Other meta members (profile,
// tag, security, source) are kept.
func Stamp(raw []byte, id string, versionID int64, lastUpdated time.Time) ([]byte, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return nil, Errorf(Invalid, "%v", err)
	}
	var meta Object
	if m := obj.Get("meta"); m != nil {
		if meta, err = ParseObject(m); err != nil {
			return nil, &Error{Code: Invalid, Issues: []Issue{{Severity: "error", Code: "structure",
				Diagnostics: "meta must be an object", Expression: []string{"meta"}}}}
		}
	}
	meta.Set("versionId", quote(strconv.FormatInt(versionID, 10)))
	meta.Set("lastUpdated", quote(FormatInstant(lastUpdated)))
	metaRaw, err := meta.MarshalJSON()
	if err != nil {
		return nil, Errorf(Invalid, "meta: %v", err)
	}
	out := Object{{"resourceType", obj.Get("resourceType")}, {"id", quote(id)}, {"meta", metaRaw}}
	for _, m := range obj {
		switch m.Name {
		case "resourceType", "id", "meta":
		default:
			out = append(out, m)
		}
	}
	b, err := out.MarshalJSON()
	if err != nil {
		return nil, Errorf(Invalid, "%v", err)
	}
	return b, nil
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
