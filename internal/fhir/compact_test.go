package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkCompact holds the compactor to utf8.Valid and json.Compact together:
// the same verdict, the same bytes, and for an object the same top-level
// members CompactMembers finds in the output.
func checkCompact(t *testing.T, src []byte) {
	t.Helper()
	var c compactor
	got, ok := c.compact([]byte("prefix"), src)
	var want bytes.Buffer
	wantOK := utf8.Valid(src) && json.Compact(&want, src) == nil
	if ok != wantOK {
		t.Fatalf("compact(%q): ok = %v, encoding/json says %v", src, ok, wantOK)
	}
	if !ok {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[6:], want.Bytes()) {
		t.Fatalf("compact(%q) = %q, json.Compact %q", src, got, "prefix"+want.String())
	}
	if got[6] != '{' {
		if len(c.members) != 0 {
			t.Fatalf("compact(%q): members %v of a value that is not an object", src, c.members)
		}
		return
	}
	var spans []memberSpan
	err := CompactMembers(got[6:], func(name string, value []byte) error {
		spans = append(spans, memberSpan{})
		return nil
	})
	if err != nil || len(spans) != len(c.members) {
		t.Fatalf("compact(%q): %d members, CompactMembers %d (%v)", src, len(c.members), len(spans), err)
	}
	i := 0
	CompactMembers(got[6:], func(name string, value []byte) error {
		m := c.members[i]
		var n string
		if json.Unmarshal(got[m.name0:m.name1], &n) != nil || n != name || string(got[m.value0:m.value1]) != string(value) {
			t.Fatalf("compact(%q): member %d is %s: %s, CompactMembers %q: %s", src, i, got[m.name0:m.name1], got[m.value0:m.value1], name, value)
		}
		i++
		return nil
	})
}

func TestCompactAgreesWithEncodingJSON(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1`, `-1`, `12.5`, `1e5`, `1E+5`, `1e-05`, `-0.0e0`, `true`, `false`, `null`,
		` { "a" : [ 1 , 2 , { } , [ ] ] , "b" : "x y" } `, "\t\r\n{\"a\":\n1}\n",
		`{"a":1,"b":{"c":"}"},"d":["]",","]}`, `{"k\"ey":"v","k\u00e9":"\u00e9\ud83d\ude00"}`,
		`"\"\\\/\b\f\n\r\t\u0041\uFFFF"`, `"é中😀"`, "\"\u2028\u2029<>&\"",
		// Refused.
		``, ` `, `{`, `}`, `[`, `[1,]`, `[,1]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{a:1}`, `{'a':1}`,
		`01`, `-`, `-a`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x1`, `1 2`, `{} {}`, `{}x`, `NaN`, `Infinity`, `tru`, `nul`, `falsey`,
		`"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\tb\"", "\"a\x00b\"", "\"\x7f\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"\xc3\"",
		"\xef\xbb\xbf{}", "{\"a\":1}\x00",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	}
	for _, s := range cases {
		checkCompact(t, []byte(s))
	}
	// Every prefix of a resource with some of everything.
	raw, err := os.ReadFile("testdata/compact.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(raw) + 1 {
		checkCompact(t, raw[:i])
	}
}

func FuzzCompact(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,true,null,{"b":"\u00e9\n"}]}`, ` [ 1 , "x" ] `, `"\ud83d"`, "\"\xff\"", `01`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkCompact(t, src) })
}

// BenchmarkParseObject parses a pretty-printed Observation.
func BenchmarkParseObject(b *testing.B) {
	raw, err := os.ReadFile("testdata/compact.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseObject(raw); err != nil {
			b.Fatal(err)
		}
	}
}
