package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// assignIDs gives every POST entry its server id up front (so that the ids
// stay the same when a unit of work is retried) and records, for every
// entry whose fullUrl is a urn:uuid: or urn:oid:, the reference it becomes
// (http.html §3.1.0.11.2).
func (b *parsed) assignIDs(newID func() string) {
	b.targets = map[string]string{}
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil {
			continue
		}
		switch e.req.Method {
		case http.MethodPost:
			e.req.ID = newID()
			if isURN(e.fullURL) {
				b.targets[e.fullURL] = e.typ + "/" + e.req.ID
			}
		case http.MethodPut:
			if isURN(e.fullURL) {
				path, _, _ := strings.Cut(e.req.URL, "?")
				if r, ok := fhir.ParseReference(path, ""); ok && !strings.Contains(e.req.URL, "?") {
					b.targets[e.fullURL] = r.Type + "/" + r.ID
				}
			}
		}
	}
}

// Matcher finds the current resources of a type that a search selects,
// inside a unit of work (so that it sees what the unit has written), or,
// when tx is nil, in what has been committed. query is a search query
// string without the "?" ("identifier=a|b"). It returns
// at most limit ids; an unknown or unsupported search parameter is an
// Invalid error, since ignoring it would match resources the client did
// not mean.
type Matcher interface {
	Match(ctx context.Context, tx store.Tx, typ, query string, limit int) (ids []string, err error)
}

// unit is the state of one attempt at a unit of work: the references that
// entries resolve to, and the conditional references resolved so far.
type unit struct {
	p       *Processor
	tx      store.Tx
	targets map[string]string
	// cond caches conditional references by target type, then reference;
	// writing a resource of a type forgets that type's answers, since the
	// write may change them.
	cond map[string]map[string]string
}

func (p *Processor) newUnit(tx store.Tx, targets map[string]string) *unit {
	return &unit{p: p, tx: tx, targets: targets, cond: map[string]map[string]string{}}
}

// wrote tells the unit that a resource of type typ was written.
func (u *unit) wrote(typ string) { delete(u.cond, typ) }

// rewriteEntry returns the entry's resource with every reference to an
// entry of the Bundle and every conditional reference replaced by a
// reference to the resource it names.
func (u *unit) rewriteEntry(ctx context.Context, res []byte) ([]byte, error) {
	return rewriteBundleRefs(res, u.targets, func(ref, typ, query string) (string, error) {
		return u.resolveConditional(ctx, ref, typ, query)
	})
}

// rewriteBundleRefs replaces the references of res to entries of the
// Bundle (urn:) with their targets, and its conditional references with
// what conditional answers for them; other references stay as they are.
func rewriteBundleRefs(res []byte, targets map[string]string, conditional func(ref, typ, query string) (string, error)) ([]byte, error) {
	return rewriteRefs(res, func(ref string) (string, bool, error) {
		if isURN(ref) {
			t, err := urnTarget(targets, ref)
			return t, err == nil, err
		}
		typ, query, ok := conditionalRef(ref)
		if !ok {
			return "", false, nil
		}
		t, err := conditional(ref, typ, query)
		return t, err == nil, err
	})
}

// urnTarget is the reference that the entry with fullUrl ref stands for.
func urnTarget(targets map[string]string, ref string) (string, error) {
	t, ok := targets[ref]
	if !ok {
		return "", unknownRef(ref)
	}
	if k, isSkipped := strings.CutPrefix(t, skipped); isSkipped {
		return "", invalid("the reference %s names Bundle.entry[%s], which was skipped", ref, k)
	}
	return t, nil
}

// NoMatchError is a conditional reference that matched no resource: the
// entry fails with 412 (http.html §3.1.0.11.2). A transaction that failed
// with it wrote nothing and may succeed once the resource it looks for is
// stored, which is what the importer tries for files whose shared
// resources it cannot tell by name.
type NoMatchError struct {
	Ref string // the reference, e.g. Practitioner?identifier=…
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("the conditional reference %q matches no resource", e.Ref)
}

// Unwrap makes it a PreconditionFailed fhir.Error.
func (e *NoMatchError) Unwrap() error {
	return &fhir.Error{Code: fhir.PreconditionFailed, Message: e.Error()}
}

// resolveConditional answers a conditional reference (http.html
// §3.1.0.11.2, "Conditional References"): the search must match exactly
// one resource, otherwise the entry fails.
func (u *unit) resolveConditional(ctx context.Context, ref, typ, query string) (string, error) {
	if t, ok := u.cond[typ][ref]; ok {
		return t, nil
	}
	if u.p.Match == nil {
		return "", fhir.Errorf(fhir.NotSupported, "conditional references such as %q are not supported", ref)
	}
	ids, err := u.p.Match.Match(ctx, u.tx, typ, query, 2)
	if err != nil {
		return "", err
	}
	switch len(ids) {
	case 0:
		return "", &NoMatchError{Ref: ref}
	case 1:
	default:
		return "", fhir.Errorf(fhir.PreconditionFailed, "the conditional reference %q matches more than one resource", ref)
	}
	t := typ + "/" + ids[0]
	m := u.cond[typ]
	if m == nil {
		m = map[string]string{}
		u.cond[typ] = m
	}
	m[ref] = t
	return t, nil
}

// conditionalRef splits a conditional reference "Type?query" (http.html
// §3.1.0.11.2). The type must look like a resource type name.
func conditionalRef(ref string) (typ, query string, ok bool) {
	typ, query, ok = strings.Cut(ref, "?")
	if !ok || typ == "" || query == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	for i := 1; i < len(typ); i++ {
		c := typ[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", "", false
		}
	}
	return typ, query, true
}

// preResolveIfNoneExist makes the fullUrl of every POST entry with
// ifNoneExist stand for the resource the conditional create will find, when
// it finds one (transactions: the references of entries processed before
// it must already name that resource). Entries with the same type and
// criteria share the answer, since the first one's create is what the later
// ones will find.
func (u *unit) preResolveIfNoneExist(ctx context.Context, b *parsed, skip []error) error {
	if u.p.Match == nil {
		return nil
	}
	seen := map[string]string{}
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil || skip[i] != nil || e.req.Method != http.MethodPost || e.req.IfNoneExist == "" || !isURN(e.fullURL) {
			continue
		}
		key := e.typ + "?" + strings.TrimPrefix(e.req.IfNoneExist, "?")
		if t, ok := seen[key]; ok {
			u.targets[e.fullURL] = t
			continue
		}
		ids, err := u.p.Match.Match(ctx, u.tx, e.typ, strings.TrimPrefix(e.req.IfNoneExist, "?"), 2)
		if err != nil {
			return entryError(i, err)
		}
		if len(ids) == 1 {
			u.targets[e.fullURL] = e.typ + "/" + ids[0]
		}
		// No match: the entry creates the resource under its own id; more
		// than one: the entry fails when it runs (412).
		seen[key] = u.targets[e.fullURL]
	}
	return nil
}

type unknownRef string

func (u unknownRef) Error() string {
	return "the reference " + string(u) + " names no entry of the Bundle"
}

// rewriteRefs returns raw with the string value of every "reference"
// member, at any depth (contained resources and extensions included),
// replaced by what fn answers when fn says it changed. Everything else,
// whitespace and member order included, is left byte for byte; a resource
// without a changed reference is returned as it is. raw must be valid JSON
// (it comes out of a decoded Bundle). One pass without building a tree:
// this runs for every resource of every transaction.
func rewriteRefs(raw []byte, fn func(ref string) (string, bool, error)) ([]byte, error) {
	var out []byte
	last := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		start := i
		end, esc := scanString(raw, i)
		i = end - 1
		j := skipSpace(raw, end)
		if j >= len(raw) || raw[j] != ':' || !isReferenceKey(raw[start:end], esc) {
			continue
		}
		j = skipSpace(raw, j+1)
		if j >= len(raw) || raw[j] != '"' {
			continue
		}
		vEnd, vEsc := scanString(raw, j)
		i = vEnd - 1
		ref := string(raw[j+1 : vEnd-1])
		if vEsc {
			if err := json.Unmarshal(raw[j:vEnd], &ref); err != nil {
				return nil, err
			}
		}
		repl, changed, err := fn(ref)
		if err != nil {
			return nil, err
		}
		if !changed {
			continue
		}
		q, err := json.Marshal(repl)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]byte, 0, len(raw)+64)
		}
		out = append(out, raw[last:j]...)
		out = append(out, q...)
		last = vEnd
	}
	if out == nil {
		return raw, nil
	}
	return append(out, raw[last:]...), nil
}

// scanString returns the index just past the JSON string starting at
// raw[i] (a '"') and whether it holds an escape.
func scanString(raw []byte, i int) (end int, escaped bool) {
	for k := i + 1; k < len(raw); k++ {
		switch raw[k] {
		case '\\':
			escaped = true
			k++
		case '"':
			return k + 1, escaped
		}
	}
	return len(raw), escaped
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
		i++
	}
	return i
}

func isReferenceKey(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted) == `"reference"`
	}
	var s string
	return json.Unmarshal(quoted, &s) == nil && s == "reference" && utf8.ValidString(s)
}

// liveTargets is targets without the entries that are skipped: a
// reference to one of them fails (skippedRef) instead of naming a
// resource that is never written.
func (b *parsed) liveTargets(skip []error) map[string]string {
	t := make(map[string]string, len(b.targets))
	for k, v := range b.targets {
		t[k] = v
	}
	for i, e := range b.entries {
		if skip[i] != nil && e.fullURL != "" {
			if _, ok := t[e.fullURL]; ok {
				t[e.fullURL] = skipped + strconv.Itoa(i)
			}
		}
	}
	return t
}

// skipped marks, in targets, the fullUrl of a skipped entry; the entry's
// index follows.
const skipped = "\x00skipped:"

// prepare lets a Preparer do the body-only work of every POST and PUT
// entry before the unit of work. Inside the unit, references resolve
// against what the unit sees; here they are guessed from the ids assigned
// up front and from conditional references searched outside any unit of
// work. A guess that turns out wrong costs only the preparation: the
// executor checks that the bytes it gets are the bytes it prepared. An
// entry whose references cannot be guessed is left unprepared, and its
// errors are reported by the unit as always.
func (p *Processor) prepare(ctx context.Context, b *parsed) {
	pr, ok := p.Exec.(Preparer)
	if !ok {
		return
	}
	cond := map[string]string{} // conditional reference → target, "" when it has none
	for i := range b.entries {
		e := &b.entries[i]
		if e.err != nil || e.req.Resource == nil || (e.req.Method != http.MethodPost && e.req.Method != http.MethodPut) {
			continue
		}
		res, err := rewriteBundleRefs(e.req.Resource, b.targets, func(ref, typ, query string) (string, error) {
			t, seen := cond[ref]
			if !seen {
				if p.Match != nil {
					if ids, err := p.Match.Match(ctx, nil, typ, query, 2); err == nil && len(ids) == 1 {
						t = typ + "/" + ids[0]
					}
				}
				cond[ref] = t
			}
			if t == "" {
				return "", errNoGuess
			}
			return t, nil
		})
		if err != nil {
			continue
		}
		req := e.req
		req.Resource = res
		e.prepared = pr.Prepare(&req)
	}
}

var errNoGuess = errors.New("bundle: the reference cannot be resolved before the unit of work")
