package fhir

import "unicode/utf8"

// maxDepth is how deeply arrays and objects may nest, as encoding/json
// allows.
const maxDepth = 10000

// compactor checks that its input is one well-formed JSON value in valid
// UTF-8 and copies it without insignificant white space, in one pass: what
// utf8.Valid and json.Compact do together, about four times as fast (every
// resource written goes through it, a transaction Bundle's twice). It says
// only whether the input is well-formed; ParseObject asks encoding/json
// why not, so errors read as they always did. A differential test and a
// fuzz target hold it to encoding/json.
type compactor struct {
	src   []byte
	dst   []byte
	i     int // next byte of src
	start int // first byte of src not yet copied to dst
	depth int
	// members are the top-level object's members, as offsets into dst,
	// when the value is an object.
	members []memberSpan
}

// memberSpan is where a top-level member's name (quotes included) and
// value are in the compacted output.
type memberSpan struct{ name0, name1, value0, value1 int }

// compact appends src, compacted, to dst; ok is false when src is not
// well-formed JSON in valid UTF-8.
func (c *compactor) compact(dst, src []byte) (out []byte, ok bool) {
	c.src, c.dst, c.i, c.start, c.depth, c.members = src, dst, 0, 0, 0, c.members[:0]
	c.space()
	ok = c.value() && c.space() && c.i == len(src)
	c.flush(c.i)
	return c.dst, ok
}

// flush copies src[start:end] to dst; the bytes from end to the next
// value are white space.
func (c *compactor) flush(end int) {
	c.dst = append(c.dst, c.src[c.start:end]...)
	c.start = end
}

// space skips white space. It returns true so that it can stand in a
// chain of checks.
func (c *compactor) space() bool {
	i := c.i
	for i < len(c.src) {
		switch c.src[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	if i != c.i {
		c.flush(c.i)
		c.i, c.start = i, i
	}
	return true
}

func (c *compactor) value() bool {
	if c.i >= len(c.src) {
		return false
	}
	switch b := c.src[c.i]; {
	case b == '{':
		return c.object()
	case b == '[':
		return c.array()
	case b == '"':
		return c.string()
	case b == '-' || '0' <= b && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return false
}

func (c *compactor) literal(word string) bool {
	if len(c.src)-c.i < len(word) || string(c.src[c.i:c.i+len(word)]) != word {
		return false
	}
	c.i += len(word)
	return true
}

// out is the offset in dst that src[c.i] will be copied to.
func (c *compactor) out() int { return len(c.dst) + c.i - c.start }

func (c *compactor) object() bool {
	top := c.depth == 0
	if empty, ok := c.open('}'); empty || !ok {
		return ok
	}
	for {
		if c.i >= len(c.src) || c.src[c.i] != '"' {
			return false
		}
		var m memberSpan
		m.name0 = c.out()
		if !c.string() {
			return false
		}
		m.name1 = c.out()
		c.space()
		if c.i >= len(c.src) || c.src[c.i] != ':' {
			return false
		}
		c.i++
		c.space()
		m.value0 = c.out()
		if !c.value() {
			return false
		}
		m.value1 = c.out()
		if top {
			c.members = append(c.members, m)
		}
		if more, ok := c.next('}'); !more {
			return ok
		}
	}
}

func (c *compactor) array() bool {
	if empty, ok := c.open(']'); empty || !ok {
		return ok
	}
	for {
		if !c.value() {
			return false
		}
		if more, ok := c.next(']'); !more {
			return ok
		}
	}
}

// open enters the array or object at src[i], which is empty when its
// closing byte follows.
func (c *compactor) open(close byte) (empty, ok bool) {
	if c.depth++; c.depth > maxDepth {
		return false, false
	}
	c.i++
	c.space()
	if c.i < len(c.src) && c.src[c.i] == close {
		c.i++
		c.depth--
		return true, true
	}
	return false, true
}

// next reads what follows an element of an array or object: a comma
// (more) or its closing byte.
func (c *compactor) next(close byte) (more, ok bool) {
	c.space()
	if c.i >= len(c.src) {
		return false, false
	}
	switch c.src[c.i] {
	case ',':
		c.i++
		c.space()
		return true, true
	case close:
		c.i++
		c.depth--
		return false, true
	}
	return false, false
}

// string checks a string: no control characters, known escapes only,
// valid UTF-8.
func (c *compactor) string() bool {
	src := c.src
	i := c.i + 1
	for i < len(src) {
		b := src[i]
		switch {
		case b == '"':
			c.i = i + 1
			return true
		case b == '\\':
			if i+1 >= len(src) {
				return false
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(src) || !isHex(src[i+2]) || !isHex(src[i+3]) || !isHex(src[i+4]) || !isHex(src[i+5]) {
					return false
				}
				i += 6
			default:
				return false
			}
		case b < 0x20:
			return false
		case b < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
	return false
}

func isHex(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }

// number checks a number.
func (c *compactor) number() bool {
	end, ok := NumberEnd(c.src, c.i)
	c.i = end
	return ok
}

// NumberEnd returns the index just past the JSON number that starts at
// b[i] (RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or
// false and the index of the first byte that breaks the grammar.
func NumberEnd(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); b[i-1] == '.' {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = digits(b, i); i == start {
			return i, false
		}
	}
	return i, true
}

// digits returns the index past the run of digits starting at b[i].
func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
