package jsonpatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The kinds of failure, for errors.Is. Every error Apply returns wraps
// exactly one of them.
var (
	// ErrInvalidPatch: the patch document itself is malformed (not an
	// array of operations, unknown op, missing member, bad pointer syntax).
	ErrInvalidPatch = errors.New("invalid JSON Patch document")
	// ErrInvalidDocument: the target document is not valid JSON.
	ErrInvalidDocument = errors.New("invalid target document")
	// ErrTestFailed: a "test" operation did not hold (RFC 6902 §4.6).
	ErrTestFailed = errors.New("JSON Patch test failed")
	// ErrCannotApply: an operation's path does not exist or cannot be
	// reached in the document (RFC 6902 §5).
	ErrCannotApply = errors.New("JSON Patch operation cannot be applied")
)

type operation struct {
	Op    string          `json:"op"`
	Path  *string         `json:"path"`
	From  *string         `json:"from"`
	Value json.RawMessage `json:"value"`
}

// Apply applies patch (an RFC 6902 document) to doc and returns the result,
// compact, with object members in their original order and new members at
// the end. Operations are applied in sequence; when one fails, the whole
// patch fails (RFC 6902 §5) and doc is unchanged.
func Apply(doc, patch []byte) ([]byte, error) {
	ops, err := parsePatch(patch)
	if err != nil {
		return nil, err
	}
	root, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	for i, op := range ops {
		root, err = op.apply(root)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i, op.op, err)
		}
	}
	var buf bytes.Buffer
	if err := encode(&buf, root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type parsedOp struct {
	op    string
	path  []string
	from  []string
	value any
}

func parsePatch(patch []byte) ([]parsedOp, error) {
	var raw []operation
	if err := json.Unmarshal(patch, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPatch, err)
	}
	ops := make([]parsedOp, 0, len(raw))
	for i, r := range raw {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: operation %d: %s", ErrInvalidPatch, i, fmt.Sprintf(format, args...))
		}
		p := parsedOp{op: r.Op}
		if r.Path == nil {
			return nil, bad("missing \"path\"")
		}
		var err error
		if p.path, err = parsePointer(*r.Path); err != nil {
			return nil, bad("path: %v", err)
		}
		switch r.Op {
		case "add", "replace", "test":
			if r.Value == nil {
				return nil, bad("%s needs a \"value\"", r.Op)
			}
			if p.value, err = decode(r.Value); err != nil {
				return nil, bad("value: %v", err)
			}
		case "move", "copy":
			if r.From == nil {
				return nil, bad("%s needs a \"from\"", r.Op)
			}
			if p.from, err = parsePointer(*r.From); err != nil {
				return nil, bad("from: %v", err)
			}
			if r.Op == "move" && isPrefix(p.from, p.path) && len(p.from) < len(p.path) {
				return nil, bad("cannot move a value into one of its children")
			}
		case "remove":
		default:
			return nil, bad("unknown op %q", r.Op)
		}
		ops = append(ops, p)
	}
	return ops, nil
}

// parsePointer splits an RFC 6901 JSON Pointer into unescaped tokens.
func parsePointer(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != '/' {
		return nil, fmt.Errorf("JSON Pointer %q does not start with /", s)
	}
	toks := strings.Split(s[1:], "/")
	for i, t := range toks {
		if strings.Contains(t, "~") {
			for j := 0; j < len(t); j++ {
				if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
					return nil, fmt.Errorf("JSON Pointer %q has a bad ~ escape", s)
				}
			}
			// ~1 first, then ~0, so that "~01" becomes "~1" (RFC 6901 §4).
			toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		}
	}
	return toks, nil
}

func isPrefix(p, q []string) bool {
	if len(p) > len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

func pointerString(p []string) string {
	var b strings.Builder
	for _, t := range p {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

func (op parsedOp) apply(root any) (any, error) {
	switch op.op {
	case "add":
		return add(root, op.path, deepCopy(op.value))
	case "remove":
		_, root, err := remove(root, op.path)
		return root, err
	case "replace":
		return replace(root, op.path, deepCopy(op.value))
	case "move":
		if isPrefix(op.from, op.path) && len(op.from) == len(op.path) {
			if _, err := get(root, op.from); err != nil {
				return nil, err
			}
			return root, nil
		}
		v, root, err := remove(root, op.from)
		if err != nil {
			return nil, err
		}
		return add(root, op.path, v)
	case "copy":
		v, err := get(root, op.from)
		if err != nil {
			return nil, err
		}
		return add(root, op.path, deepCopy(v))
	case "test":
		v, err := get(root, op.path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTestFailed, err)
		}
		if !equal(v, op.value) {
			return nil, fmt.Errorf("%w: the value at %q is not the expected one", ErrTestFailed, pointerString(op.path))
		}
		return root, nil
	}
	return nil, fmt.Errorf("%w: unknown op %q", ErrInvalidPatch, op.op)
}

// arrayIndex parses an array reference token: digits without leading zeros
// (RFC 6901 §4), below max (inclusive when end is allowed, for add).
func arrayIndex(tok string, n int, allowEnd bool) (int, error) {
	if tok == "-" {
		if allowEnd {
			return n, nil
		}
		return 0, fmt.Errorf("%w: \"-\" names no existing element", ErrCannotApply)
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("%w: %q is not an array index", ErrCannotApply, tok)
	}
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not an array index", ErrCannotApply, tok)
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i > n || (i == n && !allowEnd) {
		return 0, fmt.Errorf("%w: array index %s is out of bounds", ErrCannotApply, tok)
	}
	return i, nil
}

func get(root any, path []string) (any, error) {
	cur := root
	for i, tok := range path {
		switch c := cur.(type) {
		case *object:
			v, ok := c.get(tok)
			if !ok {
				return nil, fmt.Errorf("%w: %q does not exist", ErrCannotApply, pointerString(path[:i+1]))
			}
			cur = v
		case []any:
			idx, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[idx]
		default:
			return nil, fmt.Errorf("%w: %q does not exist", ErrCannotApply, pointerString(path[:i+1]))
		}
	}
	return cur, nil
}

// modifyParent finds the container of path's last token and lets fn change
// it. Arrays are values in Go, so fn returns the (possibly new) container,
// which is stored back into its own parent.
func modifyParent(root any, path []string, fn func(parent any, last string) (any, error)) (any, error) {
	if len(path) == 1 {
		return fn(root, path[0])
	}
	switch c := root.(type) {
	case *object:
		child, ok := c.get(path[0])
		if !ok {
			return nil, fmt.Errorf("%w: member %q does not exist", ErrCannotApply, path[0])
		}
		nc, err := modifyParent(child, path[1:], fn)
		if err != nil {
			return nil, err
		}
		c.vals[path[0]] = nc
		return c, nil
	case []any:
		idx, err := arrayIndex(path[0], len(c), false)
		if err != nil {
			return nil, err
		}
		nc, err := modifyParent(c[idx], path[1:], fn)
		if err != nil {
			return nil, err
		}
		c[idx] = nc
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q is neither an object nor an array", ErrCannotApply, path[0])
}

func add(root any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil // RFC 6902 §4.1: adding at the root replaces the document
	}
	return modifyParent(root, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case *object:
			c.set(last, v)
			return c, nil
		case []any:
			idx, err := arrayIndex(last, len(c), true)
			if err != nil {
				return nil, err
			}
			c = append(c, nil)
			copy(c[idx+1:], c[idx:])
			c[idx] = v
			return c, nil
		}
		return nil, fmt.Errorf("%w: the parent of %q is neither an object nor an array", ErrCannotApply, pointerString(path))
	})
}

// replace sets an existing member or element in place, so that a replaced
// object member keeps its position.
func replace(root any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	return modifyParent(root, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case *object:
			if _, ok := c.get(last); !ok {
				return nil, fmt.Errorf("%w: %q does not exist", ErrCannotApply, pointerString(path))
			}
			c.set(last, v)
			return c, nil
		case []any:
			idx, err := arrayIndex(last, len(c), false)
			if err != nil {
				return nil, err
			}
			c[idx] = v
			return c, nil
		}
		return nil, fmt.Errorf("%w: %q does not exist", ErrCannotApply, pointerString(path))
	})
}

func remove(root any, path []string) (removed any, newRoot any, err error) {
	if len(path) == 0 {
		return nil, nil, fmt.Errorf("%w: cannot remove the whole document", ErrCannotApply)
	}
	newRoot, err = modifyParent(root, path, func(parent any, last string) (any, error) {
		switch c := parent.(type) {
		case *object:
			v, ok := c.get(last)
			if !ok {
				return nil, fmt.Errorf("%w: %q does not exist", ErrCannotApply, pointerString(path))
			}
			removed = v
			c.remove(last)
			return c, nil
		case []any:
			idx, err := arrayIndex(last, len(c), false)
			if err != nil {
				return nil, err
			}
			removed = c[idx]
			return append(c[:idx:idx], c[idx+1:]...), nil
		}
		return nil, fmt.Errorf("%w: the parent of %q is neither an object nor an array", ErrCannotApply, pointerString(path))
	})
	return removed, newRoot, err
}
