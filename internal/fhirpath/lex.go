package fhirpath

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the lexical class of a token (FHIRPath grammar, "Lexical
// elements" of the N1 specification).
type tokKind uint8

const (
	tokEOF      tokKind = iota
	tokIdent            // identifier or delimited `identifier`; keywords too
	tokString           // 'string' with escapes resolved
	tokNumber           // 12 or 1.5
	tokDateTime         // @2020-01-02 (text without the @)
	tokExternal         // %name (text without the %)
	tokVariable         // $this, $index, $total (text without the $)
	tokOp               // punctuation and symbolic operators
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the expression, for error messages
	// delimited is true for a `quoted` identifier, which is never a keyword.
	delimited bool
}

// lex splits an expression into tokens. Comments (// and /* */) and
// whitespace are dropped.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '/' && strings.HasPrefix(src[i:], "//"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				i = len(src)
			} else {
				i += j + 1
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("at %d: unterminated comment", i)
			}
			i += j + 4
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], pos: i})
			i = j
		case c == '`':
			s, n, err := unquote(src[i:], '`')
			if err == nil && s == "" {
				err = errors.New("empty identifier")
			}
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{kind: tokIdent, text: s, pos: i, delimited: true})
			i += n
		case c == '\'':
			s, n, err := unquote(src[i:], '\'')
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{kind: tokString, text: s, pos: i})
			i += n
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			// A '.' is part of the number only when a digit follows: in
			// "1.exists()" the dot is an invocation.
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], pos: i})
			i = j
		case c == '@':
			j := i + 1
			for j < len(src) && isDateTimeChar(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("at %d: empty date/time literal", i)
			}
			toks = append(toks, token{kind: tokDateTime, text: src[i+1 : j], pos: i})
			i = j
		case c == '%':
			if i+1 >= len(src) {
				return nil, fmt.Errorf("at %d: '%%' without a name", i)
			}
			switch d := src[i+1]; {
			case d == '`' || d == '\'':
				s, n, err := unquote(src[i+1:], d)
				if err != nil {
					return nil, fmt.Errorf("at %d: %w", i, err)
				}
				toks = append(toks, token{kind: tokExternal, text: s, pos: i})
				i += 1 + n
			case isIdentStart(d):
				j := i + 2
				// Names such as %vs-administrative-gender contain '-'.
				for j < len(src) && (isIdentPart(src[j]) || src[j] == '-') {
					j++
				}
				toks = append(toks, token{kind: tokExternal, text: src[i+1 : j], pos: i})
				i = j
			default:
				return nil, fmt.Errorf("at %d: '%%' without a name", i)
			}
		case c == '$':
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("at %d: '$' without a name", i)
			}
			toks = append(toks, token{kind: tokVariable, text: src[i+1 : j], pos: i})
			i = j
		default:
			op := ""
			for _, o := range []string{"!=", "!~", "<=", ">=", ".", ",", "(", ")", "[", "]", "{", "}", "|", "=", "~", "<", ">", "+", "-", "*", "/", "&"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("at %d: unexpected character %q", i, r)
			}
			toks = append(toks, token{kind: tokOp, text: op, pos: i})
			i += len(op)
		}
	}
	toks = append(toks, token{kind: tokEOF, pos: len(src)})
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDateTimeChar(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == ':' || c == 'T' || c == 'Z' || c == '.' || c == '+'
}

// unquote reads a quoted string or delimited identifier at the start of s
// and returns its value and the number of bytes consumed. The escapes are
// those of the FHIRPath grammar (ESC): \' \" \` \\ \/ \f \n \r \t \uXXXX.
func unquote(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated escape")
			}
			i++
			switch e := s[i]; e {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 >= len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\u escape %q", s[i+1:i+5])
				}
				b.WriteRune(rune(v))
				i += 4
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", q)
}
