package search

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what decodeObject must agree with: encoding/json's Decoder
// with UseNumber, one object and nothing after it.
func stdDecode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	return m, nil
}

var decodeSeeds = []string{
	`{}`, ` { } `, "\n{\"a\"\t:\r1}\n", `{"a":null,"b":true,"c":false}`,
	`{"resourceType":"Observation","id":"x","valueQuantity":{"value":6.3,"unit":"mmol/L"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]}}]}`,
	`{"n":[0,-0,1,-1,10,1.5,-0.25,1e5,1E+5,2e-3,123456789012345678901234567890,0.1000]}`,
	`{"s":"plain","e":"\"quoted\" \\ \/ \b\f\n\r\t","u":"caf\u00e9 \ud83d\ude00","raw":"café 😀"}`,
	"{\"bad\":\"\xff\xfe\"}", "{\"bad\xff\":1}", `{"half":"\ud800"}`, `{"a":1,"a":2}`, `{"a":{"a":{"a":[[[]]]}}}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`,
	`{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}}`, `{"a":1} x`, `{"a":[1,]}`, `{"a":[1 2]}`,
	"{\"a\":\"line\nbreak\"}", `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"unterminated}`, `[1]`, `"s"`, `1`, `null`, ``, `{`,
	`{"a":[` + strings.Repeat(`[`, 20) + strings.Repeat(`]`, 20) + `]}`,
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := decodeObject(data)
	want, wantErr := stdDecode(data)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decodeObject(%q): error %v, encoding/json: %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeObject(%q)\n got %#v\nwant %#v", data, got, want)
	}
}

func TestDecodeObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
	}
	deep := strings.Repeat(`{"a":`, maxDepth+1) + `1` + strings.Repeat(`}`, maxDepth+1)
	checkDecode(t, []byte(deep))
	ok := strings.Repeat(`{"a":`, maxDepth) + `1` + strings.Repeat(`}`, maxDepth)
	checkDecode(t, []byte(ok))
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// BenchmarkDecodeObject: Index's decoder against encoding/json's, on the
// bodies of BenchmarkIndex.
func BenchmarkDecodeObject(b *testing.B) {
	for _, body := range []struct {
		name string
		data []byte
	}{{"Patient", benchPatient}, {"Observation", benchObservation}} {
		b.Run(body.name+"/search", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, err := decodeObject(body.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(body.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.data)))
			for b.Loop() {
				if _, err := stdDecode(body.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
