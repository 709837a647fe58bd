package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
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

// ValidID reports whether s is a valid FHIR logical id.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Member is one name/value pair of a JSON object, in document order.
type Member struct {
	Name  string
	Value json.RawMessage
}

// Object is a JSON object with its member order kept, so that rewriting a
// resource (to set its id and meta) leaves everything else where it was.
type Object []Member

// ParseObject decodes a JSON object, keeping member order. It rejects
// anything that is not a single object, and duplicate member names. Member
// values come back compacted (no insignificant white space).
//
// It runs on every write, so it does not decode values: it compacts the
// document once, which also checks that it is well-formed JSON and notes
// where each top-level member begins and ends.
func ParseObject(data []byte) (Object, error) {
	var c compactor
	buf, ok := c.compact(make([]byte, 0, len(data)), data)
	if !ok {
		// Why not, in encoding/json's words.
		if !utf8.Valid(data) {
			return nil, fmt.Errorf("not valid JSON: the text is not valid UTF-8")
		}
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		return nil, fmt.Errorf("not valid JSON") // the compactor and encoding/json disagree: a bug, held by the tests
	}
	if len(buf) == 0 || buf[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	obj := make(Object, 0, len(c.members))
	// A resource has a few dozen members: they are compared in turn, and
	// a map is made only for an object with many more.
	var seen map[string]bool
	if len(c.members) > 32 {
		seen = make(map[string]bool, len(c.members))
	}
	for _, m := range c.members {
		raw := buf[m.name0:m.name1]
		name := string(raw[1 : len(raw)-1])
		if bytes.IndexByte(raw, '\\') >= 0 {
			if err := json.Unmarshal(raw, &name); err != nil {
				return nil, fmt.Errorf("not valid JSON: %w", err)
			}
		}
		dup := seen[name]
		if seen != nil {
			seen[name] = true
		} else {
			dup = slices.ContainsFunc(obj, func(o Member) bool { return o.Name == name })
		}
		if dup {
			return nil, fmt.Errorf("duplicate JSON member %q", name)
		}
		obj = append(obj, Member{name, json.RawMessage(buf[m.value0:m.value1:m.value1])})
	}
	return obj, nil
}

// CompactMembers calls fn with the name and raw value of each top-level
// member of b, in order. b must be a JSON object in compact form, as
// stored bodies are: values are only delimited, not checked. Input that
// is not such an object is an error, never a panic.
func CompactMembers(b []byte, fn func(name string, value []byte) error) error {
	if len(b) < 2 || b[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	malformed := fmt.Errorf("not valid compact JSON")
	i := 1
	for i < len(b) && b[i] != '}' {
		if b[i] == ',' {
			i++
		}
		if i >= len(b) || b[i] != '"' {
			return malformed
		}
		kend := stringEnd(b, i)
		if kend >= len(b) || b[kend] != ':' {
			return malformed
		}
		name := string(b[i+1 : kend-1])
		if bytes.IndexByte(b[i:kend], '\\') >= 0 {
			if err := json.Unmarshal(b[i:kend], &name); err != nil {
				return fmt.Errorf("not valid JSON: %w", err)
			}
		}
		vstart := kend + 1 // past the colon
		vend := valueEnd(b, vstart)
		if vend <= vstart || vend > len(b) {
			return malformed
		}
		if err := fn(name, b[vstart:vend:vend]); err != nil {
			return err
		}
		i = vend
	}
	if i != len(b)-1 {
		return fmt.Errorf("not valid JSON: data after the object")
	}
	return nil
}

// CompactElements calls fn with the index and raw value of each element
// of b, a JSON array in compact form (a member's value that ParseObject
// returned, for one): values are only delimited, not checked. Input that
// is not such an array is an error, never a panic.
func CompactElements(b []byte, fn func(i int, value []byte) error) error {
	if len(b) < 2 || b[0] != '[' {
		return fmt.Errorf("not a JSON array")
	}
	i, n := 1, 0
	for i < len(b) && b[i] != ']' {
		if n > 0 {
			if b[i] != ',' {
				return fmt.Errorf("not valid compact JSON")
			}
			i++
		}
		end := valueEnd(b, i)
		if end <= i || end > len(b) {
			return fmt.Errorf("not valid compact JSON")
		}
		if err := fn(n, b[i:end:end]); err != nil {
			return err
		}
		i, n = end, n+1
	}
	if i != len(b)-1 {
		return fmt.Errorf("not valid JSON: data after the array")
	}
	return nil
}

// stringEnd returns the index just past the JSON string starting at b[i]
// (a quote). b is known to be valid, compact JSON.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value starting at b[i].
// b is known to be valid, compact JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j = stringEnd(b, j) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j
			}
			depth--
		case ',':
			if depth == 0 {
				return j
			}
		}
		if depth == 0 && j >= i && (b[j] == '}' || b[j] == ']' || b[j] == '"') {
			return j + 1
		}
	}
	return len(b)
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
// v is a value of a checked body, as ParseObject's members and
// CompactMembers' values of such a body are: one without escapes is its
// own text.
func String(v json.RawMessage) (s string, ok bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
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

// ScanHeader returns the resourceType and id of a resource body in compact
// form, as a Bundle's resources are once the Bundle has been read and
// checked. Where ReadHeader checks and compacts the whole body, it reads
// the top-level members (CompactMembers) up to the id. What it leaves
// unchecked (unique member names after the id) is checked when the body
// is prepared for storage (Prepare). A body it cannot read that way (not
// compact, a value of the wrong kind, a repeated resourceType) gets
// ReadHeader's answer, errors included.
func ScanHeader(raw []byte) (Header, error) {
	var h Header
	var haveType, haveID bool
	err := CompactMembers(raw, func(name string, v []byte) error {
		dst, have := &h.ResourceType, &haveType
		switch name {
		case "resourceType":
		case "id":
			dst, have = &h.ID, &haveID
		default:
			return nil
		}
		s, ok := String(v)
		if !ok || *have {
			return errReadHeader
		}
		*dst, *have = s, true
		if haveType && haveID {
			return errHeaderRead
		}
		return nil
	})
	if (err == nil || err == errHeaderRead) && haveType {
		return h, nil
	}
	return ReadHeader(raw)
}

// ScanHeader's ways out of CompactMembers: the header is read, or it is
// for ReadHeader to read.
var (
	errHeaderRead = errors.New("header read")
	errReadHeader = errors.New("for ReadHeader")
)

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
	p, err := Prepare(raw)
	if err != nil {
		return nil, err
	}
	return p.Stamp(id, versionID, lastUpdated), nil
}

// Prepared is a resource body parsed once, so that it can be stamped
// cheaply where time is dear: inside a write transaction, which on SQLite
// holds the only writer. Prepare it (and validate it) before the
// transaction; Stamp it inside.
type Prepared struct {
	Header
	resourceType json.RawMessage
	meta         Object // meta without versionId and lastUpdated
	rest         []byte // the other members, compact, each preceded by a comma
}

// Prepare parses a resource body: one JSON object with a string
// resourceType (and, when present, a string id and an object meta).
func Prepare(raw []byte) (*Prepared, error) {
	obj, err := ParseObject(raw)
	if err != nil {
		return nil, Errorf(Invalid, "%v", err)
	}
	p := &Prepared{}
	if p.Header, err = obj.header(); err != nil {
		return nil, err
	}
	p.resourceType = obj.Get("resourceType")
	if m := obj.Get("meta"); m != nil {
		if p.meta, err = ParseObject(m); err != nil {
			return nil, &Error{Code: Invalid, Issues: []Issue{{Severity: "error", Code: "structure",
				Diagnostics: "meta must be an object", Expression: []string{"meta"}}}}
		}
	}
	var rest bytes.Buffer
	for _, m := range obj {
		switch m.Name {
		case "resourceType", "id", "meta":
		default:
			rest.WriteByte(',')
			name, _ := json.Marshal(m.Name)
			rest.Write(name)
			rest.WriteByte(':')
			rest.Write(m.Value) // already compact
		}
	}
	p.rest = rest.Bytes()
	return p, nil
}

// Stamp renders the resource with the server's id, versionId and
// lastUpdated; see the package-level Stamp.
func (p *Prepared) Stamp(id string, versionID int64, lastUpdated time.Time) []byte {
	meta := make(Object, len(p.meta), len(p.meta)+2)
	copy(meta, p.meta)
	meta.Set("versionId", quote(strconv.FormatInt(versionID, 10)))
	meta.Set("lastUpdated", quote(FormatInstant(lastUpdated)))
	out := make([]byte, 0, len(p.rest)+len(id)+128+16*len(meta))
	out = append(out, `{"resourceType":`...)
	out = append(out, p.resourceType...)
	out = append(out, `,"id":`...)
	out = append(out, quote(id)...)
	out = append(out, `,"meta":{`...)
	for i, m := range meta {
		if i > 0 {
			out = append(out, ',')
		}
		name, _ := json.Marshal(m.Name)
		out = append(out, name...)
		out = append(out, ':')
		out = append(out, m.Value...) // compact: parsed by ParseObject or made by quote
	}
	out = append(out, '}')
	out = append(out, p.rest...)
	return append(out, '}')
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
