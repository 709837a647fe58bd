package validate

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON parser that builds just the tree the validator walks. It is
// strict (RFC 8259, UTF-8 only) and bounds nesting depth so that hostile
// input cannot exhaust the stack.

type kind uint8

const (
	kNull kind = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "boolean", "number", "string", "array", "object"}[k]
}

// node is a parsed JSON value. str holds a string's decoded text or a
// number's literal.
type node struct {
	kind kind
	str  string
	arr  []node
	obj  []member
}

type member struct {
	key string
	val node
}

const maxDepth = 200

type parser struct {
	data  []byte
	pos   int
	depth int
}

type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.offset, e.msg)
}

func parse(data []byte) (node, error) {
	p := parser{data: data}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		p.pos = 3 // a UTF-8 byte order mark carries no content
	}
	p.skipSpace()
	var n node
	if err := p.value(&n); err != nil {
		return node{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return node{}, p.errorf("unexpected data after the top-level value")
	}
	return n, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), offset: p.pos}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(n *node) error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(n)
	case c == '[':
		return p.array(n)
	case c == '"':
		s, err := p.string()
		n.kind, n.str = kString, s
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(n)
	default:
		for _, lit := range [...]struct {
			text string
			kind kind
		}{{"true", kTrue}, {"false", kFalse}, {"null", kNull}} {
			if len(p.data)-p.pos >= len(lit.text) && string(p.data[p.pos:p.pos+len(lit.text)]) == lit.text {
				p.pos += len(lit.text)
				n.kind = lit.kind
				return nil
			}
		}
		return p.errorf("unexpected character %q", c)
	}
}

func (p *parser) object(n *node) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // {
	n.kind = kObject
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.errorf("expected a property name")
		}
		key, err := p.string()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.errorf("expected ':' after property name")
		}
		p.pos++
		p.skipSpace()
		n.obj = append(n.obj, member{key: key})
		if err := p.value(&n.obj[len(n.obj)-1].val); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.errorf("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(n *node) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	defer func() { p.depth-- }()
	p.pos++ // [
	n.kind = kArray
	n.arr = []node{} // an empty array is not an absent one
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		n.arr = append(n.arr, node{})
		if err := p.value(&n.arr[len(n.arr)-1]); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return p.errorf("expected ',' or ']' in array")
		}
	}
}

// number accepts exactly the RFC 8259 number grammar, which is also the
// lexical form of FHIR decimal.
func (p *parser) number(n *node) error {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		s := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		return p.pos - s
	}
	if p.pos < len(d) && d[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return p.errorf("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.errorf("invalid number")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.errorf("invalid number")
		}
	}
	n.kind, n.str = kNumber, string(d[start:p.pos])
	return nil
}

var errEOF = errors.New("unexpected end of input in string")

func (p *parser) string() (string, error) {
	p.pos++ // "
	d := p.data
	start := p.pos
	// Fast path: no escapes, ASCII or valid UTF-8.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			s := d[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return "", &syntaxError{"invalid UTF-8 in string", start}
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.pos++
	}
	if p.pos >= len(d) {
		return "", &syntaxError{errEOF.Error(), p.pos}
	}
	buf := append([]byte(nil), d[start:p.pos]...)
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return "", &syntaxError{"invalid UTF-8 in string", start}
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(d) {
			break
		}
		switch e := d[p.pos]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4(p.pos + 1)
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			p.pos += 4
			if utf16.IsSurrogate(r) {
				// A pair encodes one rune; a lone half becomes U+FFFD,
				// as encoding/json does.
				if r2, ok := p.hex4(p.pos + 3); ok && p.pos+2 < len(d) && d[p.pos+1] == '\\' && d[p.pos+2] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						p.pos += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape \\%c", e)
		}
		p.pos++
	}
	return "", &syntaxError{errEOF.Error(), p.pos}
}

func (p *parser) hex4(at int) (rune, bool) {
	if at+4 > len(p.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.data[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}
