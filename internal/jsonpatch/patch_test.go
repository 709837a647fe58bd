package jsonpatch

import (
	"errors"
	"testing"
)

// TestApplyRFC6902AppendixA runs the examples of RFC 6902 Appendix A.
func TestApplyRFC6902AppendixA(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
		wantErr                error
	}{
		{"A.1 adding an object member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`, nil},
		{"A.2 adding an array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`, nil},
		{"A.3 removing an object member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`, nil},
		{"A.4 removing an array element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`, nil},
		{"A.5 replacing a value", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`, nil},
		{"A.6 moving a value", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`, nil},
		{"A.7 moving an array element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`, nil},
		{"A.8 testing a value: success", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`, nil},
		{"A.9 testing a value: error", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "", ErrTestFailed},
		{"A.10 adding a nested member object", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"foo":"bar","child":{"grandchild":{}}}`, nil},
		{"A.11 ignoring unrecognized elements", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`, `{"foo":"bar","baz":"qux"}`, nil},
		{"A.12 adding to a nonexistent target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "", ErrCannotApply},
		{"A.14 ~ escape ordering", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`, nil},
		{"A.15 comparing strings and numbers", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, "", ErrTestFailed},
		{"A.16 adding an array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), []byte(tt.patch))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Apply error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			assertEqualJSON(t, got, tt.want)
		})
	}
}

func assertEqualJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	g, err := decode(got)
	if err != nil {
		t.Fatalf("result is not JSON: %v: %s", err, got)
	}
	w, err := decode([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if !equal(g, w) {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestApplyKeepsMemberOrder(t *testing.T) {
	doc := `{"resourceType":"Patient","id":"p1","active":true,"gender":"male","birthDate":"1970-01-01"}`
	patch := `[{"op":"replace","path":"/gender","value":"female"},{"op":"add","path":"/name","value":[{"family":"<Ünïcode & co>"}]},{"op":"remove","path":"/active"}]`
	got, err := Apply([]byte(doc), []byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-01-01","name":[{"family":"<Ünïcode & co>"}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestApplyErrors(t *testing.T) {
	doc := `{"a":{"b":[1,2,3]},"n":1.0}`
	tests := []struct {
		name, patch string
		want        error
	}{
		{"patch is not an array", `{"op":"add"}`, ErrInvalidPatch},
		{"unknown op", `[{"op":"frobnicate","path":"/a"}]`, ErrInvalidPatch},
		{"missing path", `[{"op":"remove"}]`, ErrInvalidPatch},
		{"add without value", `[{"op":"add","path":"/x"}]`, ErrInvalidPatch},
		{"move without from", `[{"op":"move","path":"/x"}]`, ErrInvalidPatch},
		{"pointer without leading slash", `[{"op":"remove","path":"a"}]`, ErrInvalidPatch},
		{"bad tilde escape", `[{"op":"remove","path":"/a~2"}]`, ErrInvalidPatch},
		{"move into own child", `[{"op":"move","from":"/a","path":"/a/b/0"}]`, ErrInvalidPatch},
		{"remove missing member", `[{"op":"remove","path":"/zzz"}]`, ErrCannotApply},
		{"replace missing member", `[{"op":"replace","path":"/zzz","value":1}]`, ErrCannotApply},
		{"index out of bounds", `[{"op":"add","path":"/a/b/4","value":1}]`, ErrCannotApply},
		{"leading zero index", `[{"op":"remove","path":"/a/b/01"}]`, ErrCannotApply},
		{"dash on remove", `[{"op":"remove","path":"/a/b/-"}]`, ErrCannotApply},
		{"test on missing path", `[{"op":"test","path":"/nope","value":1}]`, ErrTestFailed},
		{"later op fails after earlier succeeded", `[{"op":"add","path":"/x","value":1},{"op":"test","path":"/x","value":2}]`, ErrTestFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply([]byte(doc), []byte(tt.patch))
			if !errors.Is(err, tt.want) {
				t.Errorf("Apply error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestApplyMisc(t *testing.T) {
	tests := []struct{ name, doc, patch, want string }{
		{"numbers compare by value", `{"n":1.0}`, `[{"op":"test","path":"/n","value":1}]`, `{"n":1.0}`},
		{"objects compare regardless of order", `{"o":{"a":1,"b":2}}`, `[{"op":"test","path":"/o","value":{"b":2,"a":1}}]`, `{"o":{"a":1,"b":2}}`},
		{"copy is deep", `{"a":{"x":1}}`, `[{"op":"copy","from":"/a","path":"/b"},{"op":"replace","path":"/b/x","value":2}]`, `{"a":{"x":1},"b":{"x":2}}`},
		{"move to same place is a no-op", `{"a":1}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":1}`},
		{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":{"b":2}}]`, `{"b":2}`},
		{"slash escape", `{"a/b":1}`, `[{"op":"replace","path":"/a~1b","value":2}]`, `{"a/b":2}`},
		{"empty patch", `{"a":1}`, `[]`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), []byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			assertEqualJSON(t, got, tt.want)
		})
	}
}
