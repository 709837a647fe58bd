package rest

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"sync"

	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

type searchsetBundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []link        `json:"link"`
	Entry        []searchEntry `json:"entry,omitempty"`
}

type searchEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

// searchset renders a page of search results as a Bundle of type
// searchset (search.html#2.1.0.1, bundle.html#searchset): the matches
// (search.mode match), then the included resources (include), then, when
// parameters were ignored, an OperationOutcome (outcome). Links are
// absolute: self is the search as understood (only the parameters used),
// next and previous carry keyset cursors.
func (a *API) searchset(dst []byte, typ string, params url.Values, q *search.Query, res *store.SearchResult, issues []fhir.Issue) ([]byte, error) {
	out := searchsetBundle{ResourceType: "Bundle", ID: a.cfg.NewID(), Type: "searchset"}
	if res.Total >= 0 {
		out.Total = &res.Total
	}
	used := usedParams(params, issues)
	out.Link = append(out.Link, link{"self", a.searchURL(typ, used, q.Cursor)})
	if res.Next != "" {
		out.Link = append(out.Link, link{"next", a.searchURL(typ, used, res.Next)})
	}
	if res.Prev != "" {
		out.Link = append(out.Link, link{"previous", a.searchURL(typ, used, res.Prev)})
	}
	shape := shaper{summary: q.Summary, elements: q.Elements}
	out.Entry = make([]searchEntry, 0, len(res.Matches)+len(res.Included)+1)
	add := func(v *store.Version, mode string) error {
		body, err := shape.apply(v.Type, v.Body)
		if err != nil {
			return err
		}
		e := searchEntry{FullURL: a.cfg.Base + "/" + v.Type + "/" + v.ID, Resource: body}
		e.Search.Mode = mode
		out.Entry = append(out.Entry, e)
		return nil
	}
	for _, v := range res.Matches {
		if err := add(v, "match"); err != nil {
			return nil, err
		}
	}
	for _, v := range res.Included {
		if err := add(v, "include"); err != nil {
			return nil, err
		}
	}
	if len(issues) > 0 {
		e := searchEntry{Resource: fhir.Outcome(issues...)}
		e.Search.Mode = "outcome"
		out.Entry = append(out.Entry, e)
	}
	return out.render(dst)
}

// render appends the Bundle as JSON to dst. The entries' resources are
// copied as they are: they are stored (or shaped, or made) as compact JSON
// already, and encoding/json would check and compact every byte of them
// again — for a page of 50 Observations, a sizeable part of the search's
// time.
func (b *searchsetBundle) render(dst []byte) ([]byte, error) {
	entries := b.Entry
	b.Entry = nil
	head, err := marshalRaw(b)
	b.Entry = entries
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return append(dst, head...), nil
	}
	size := len(head) + 16
	for _, e := range entries {
		size += len(e.Resource) + len(e.FullURL) + 64
	}
	out := slices.Grow(dst, size)
	out = append(out, head[:len(head)-1]...) // without the closing brace
	out = append(out, `,"entry":[`...)
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '{')
		if e.FullURL != "" {
			out = append(out, `"fullUrl":`...)
			if out, err = appendJSONString(out, e.FullURL); err != nil {
				return nil, err
			}
			out = append(out, ',')
		}
		out = append(out, `"resource":`...)
		out = append(out, e.Resource...)
		out = append(out, `,"search":{"mode":"`...)
		out = append(out, e.Search.Mode...)
		out = append(out, `"}}`...)
	}
	return append(out, "]}"...), nil
}

// pageBuffers holds the buffers that pages of search results are rendered
// into, so that each search does not allocate its page anew: a page of 50
// Observations is about 50 KB, and at 4,000 searches a second such pages
// were half of all the server allocated, and most of its garbage
// collections. A buffer of a page larger than maxPooledPage is left to the
// collector rather than kept for pages that mostly are far smaller.
var pageBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledPage = 1 << 20

// pageBuffer returns an empty buffer to render a page into; give it back
// with putPageBuffer once the page is written.
func pageBuffer() *[]byte { return pageBuffers.Get().(*[]byte) }

// putPageBuffer returns b, which now holds page, for another page.
func putPageBuffer(b *[]byte, page []byte) {
	if cap(page) > maxPooledPage {
		return
	}
	*b = page[:0]
	pageBuffers.Put(b)
}

// appendJSONString appends s as a JSON string, as marshalRaw writes it. A
// full URL of our base, a type and an id needs no escape, and then costs
// no encoder.
func appendJSONString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, err := marshalRaw(s)
			return append(dst, q...), err
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// marshalRaw is json.Marshal without HTML escaping: URLs keep their "&".
func marshalRaw(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// usedParams are the request's parameters without those that were
// ignored (reported in issues) and without the cursor and presentation
// parameters, which the links set themselves.
func usedParams(params url.Values, issues []fhir.Issue) url.Values {
	ignored := map[string]bool{search.CursorParam: true, "_format": true, "_pretty": true}
	for _, is := range issues {
		for _, e := range is.Expression {
			ignored[e] = true
		}
	}
	used := url.Values{}
	for k, v := range params {
		if !ignored[k] {
			used[k] = v
		}
	}
	return used
}

// searchURL is the absolute URL of a page of a search.
func (a *API) searchURL(typ string, params url.Values, cursor string) string {
	p := url.Values{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p[k] = params[k]
	}
	if cursor != "" {
		p.Set(search.CursorParam, cursor)
	}
	u := a.cfg.Base + "/" + typ
	if len(p) > 0 {
		u += "?" + p.Encode()
	}
	return u
}
