package sqlstore

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/search"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		numbered bool
		in, want string
	}{
		{"question marks kept", false, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{"numbered in order", true, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"literal left alone", true, "SELECT '?' FROM t WHERE b = ?", "SELECT '?' FROM t WHERE b = $1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rebinder{numbered: tc.numbered}
			for range 2 { // the second call comes from the cache
				if got := r.rebind(tc.in); got != tc.want {
					t.Fatalf("rebind(%q): got %q, want %q", tc.in, got, tc.want)
				}
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		after int64
		total int
	}{{0, 0}, {1, 1}, {123456789, 42}} {
		after, total, ok := parseCursor(formatCursor(tc.after, tc.total))
		if !ok || after != tc.after || total != tc.total {
			t.Errorf("round trip of (%d, %d): got (%d, %d, %v)", tc.after, tc.total, after, total, ok)
		}
	}
	for _, bad := range []string{"", "h", "h1", "x1.2", "h-1.2", "h1.-2", "h1.2.3"} {
		if _, _, ok := parseCursor(bad); ok {
			t.Errorf("parseCursor(%q): got ok, want rejected", bad)
		}
	}
}

func TestCeilMicro(t *testing.T) {
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{base, base.UnixMicro()},
		{base.Add(time.Nanosecond), base.UnixMicro() + 1},
		{base.Add(time.Microsecond), base.UnixMicro() + 1},
		{base.Add(-time.Nanosecond), base.UnixMicro()},
	} {
		if got := ceilMicro(tc.in); got != tc.want {
			t.Errorf("ceilMicro(%v): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestPatientWalk checks which searches walk an index table by patient: a
// Patient named by the `patient` parameter and a token's one code (first
// choice) or a date, of a parameter that US Core searches with `patient`;
// every other search keeps its plan.
func TestPatientWalk(t *testing.T) {
	reg, err := search.NewRegistry(search.Config{Base: "http://example.org/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, query string
		want       string // the table and the parameter walked with the patient, "" for none
	}{
		{"Observation", "patient=p&category=laboratory", "search_token_patient category"},
		{"Observation", "patient=Patient/p&code=http://loinc.org|2339-0&date=ge2020", "search_token_patient code"},
		{"Observation", "date=ge2020&patient=p&status=final", "search_token_patient status"},
		{"Observation", "patient=p&code=|2339-0", "search_token_patient code"},
		{"Condition", "patient=p&clinical-status=active", "search_token_patient clinical-status"},
		{"Encounter", "patient=p&date=ge2015-01-01", "search_date_patient date"},
		{"Observation", "patient=p&date=2020&category=laboratory,vital-signs", "search_date_patient date"},
		{"Observation", "subject=Patient/p&category=laboratory", ""},                                          // not the patient parameter
		{"Observation", "subject:Group=g&category=laboratory", ""},                                            // not a Patient
		{"Observation", "patient=p&category=laboratory,vital-signs", ""},                                      // two codes
		{"Observation", "patient=p&date=2020,2021", ""},                                                       // two dates
		{"Observation", "patient=p&category:not=laboratory", ""},                                              // a negation
		{"Observation", "patient=p&category=http://terminology.hl7.org/CodeSystem/observation-category|", ""}, // a system alone
		{"Observation", "patient=p&category:text=lab", ""},
		{"Observation", "patient=p&date:missing=true", ""},
		{"Observation", "patient=p&combo-code=2339-0", ""},                 // no US Core search pairs it with patient
		{"Claim", "patient=p&status=active", ""},                           // nor these
		{"ExplanationOfBenefit", "patient=p&created=ge2020", ""},           //
		{"Encounter", "patient=p&class=AMB", "search_token_patient class"}, // Encounter: class+patient
		{"MedicationRequest", "patient=p&intent=order&authoredon=ge2020", "search_token_patient intent"},
		{"Observation", "patient=p&code-value-quantity=2339-0$gt100", ""}, // a composite
		{"Observation", "category=laboratory&date=ge2020", ""},
	} {
		vals, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		q, _, err := reg.Parse(tc.typ, vals, true)
		if err != nil {
			t.Fatalf("%s?%s: %v", tc.typ, tc.query, err)
		}
		got := ""
		if i, table := patientWalk(reg, tc.typ, q.Where); i >= 0 {
			got = table + " " + q.Where[i].(search.Exists).Param
		}
		if got != tc.want {
			t.Errorf("%s?%s walks %q, want %q", tc.typ, tc.query, got, tc.want)
		}
	}
}

func TestManyRowsStaysBounded(t *testing.T) {
	var m manyRows
	a := manyKey("SELECT i1.rid FROM search_token i1 WHERE i1.pid = ? AND i1.code = ?", []any{int64(7), "85354-9"})
	b := manyKey("SELECT i1.rid FROM search_token i1 WHERE i1.pid = ? AND i1.code = ?", []any{int64(7), "85354-"})
	m.add(a)
	if !m.has(a) || m.has(b) {
		t.Fatalf("has(a), has(b) = %v, %v; want true, false", m.has(a), m.has(b))
	}
	long := manyKey("SELECT i1.rid FROM search_string i1 WHERE i1.pid = ? AND i1.norm = ?", []any{int64(3), strings.Repeat("x", maxManyKey)})
	m.add(long)
	if m.has(long) {
		t.Error("a condition longer than maxManyKey was remembered")
	}
	for i := range maxMany + 10 {
		m.add(manyKey("c", []any{i}))
	}
	if n := len(m.set); n > maxMany {
		t.Errorf("%d conditions remembered, want at most %d", n, maxMany)
	}
}

// TestRowsFollowTheIndexes checks that the order a unit of work writes
// each table's index rows in is an index of the table, as the migrations
// of both backends leave it (a later CREATE INDEX of a name replaces the
// earlier, DROP INDEX removes it): otherwise the rows would still be
// right, only slower to write.
func TestRowsFollowTheIndexes(t *testing.T) {
	create := regexp.MustCompile(`(?i)CREATE INDEX (?:IF NOT EXISTS )?(\w+) ON (\w+) \(([^)]*)\)`)
	drop := regexp.MustCompile(`(?i)DROP INDEX (?:IF EXISTS )?(\w+)`)
	for _, dialect := range []string{"sqlite", "postgres"} {
		files, err := filepath.Glob(filepath.Join("..", dialect, "migrations", "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("the %s migrations: %v", dialect, err)
		}
		slices.Sort(files)
		indexes := map[string][2]string{} // name → table, columns
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, stmt := range strings.Split(string(b), ";") {
				if m := create.FindStringSubmatch(stmt); m != nil {
					indexes[m[1]] = [2]string{m[2], m[3]}
				} else if m := drop.FindStringSubmatch(stmt); m != nil {
					delete(indexes, m[1])
				}
			}
		}
		for _, rt := range rowTables {
			found := false
			for _, ix := range indexes {
				found = found || ix == [2]string{rt.name, rt.index}
			}
			if !found {
				t.Errorf("%s: %s has no index (%s)", dialect, rt.name, rt.index)
			}
		}
	}
}

// TestStatementsInPowersOfTwo checks that a table's rows go out, all of
// them and in index order, in INSERTs of a power of two rows each, the
// largest first, rowTables[t].batch at most: few statement texts, each
// prepared once per connection.
func TestStatementsInPowersOfTwo(t *testing.T) {
	for _, k := range []int{1, 2, 3, 31, 32, 33, 95, 1000} {
		var r indexRows
		for i := k; i > 0; i-- { // reversed: statements sorts them
			r.put(0, row{rid: int64(i), pid: 7, a: "s", b: fmt.Sprintf("c%04d", i)})
		}
		var got []any
		var sizes []int
		for _, s := range r.statements(nil, "INSERT") {
			n := len(s.Args) / 5
			if s.Query != insertRows("INSERT", 0, n) || n&(n-1) != 0 || n > rowTables[0].batch || len(sizes) > 0 && n > sizes[len(sizes)-1] {
				t.Fatalf("%d rows: a statement of %d rows after %v", k, n, sizes)
			}
			sizes = append(sizes, n)
			got = append(got, s.Args...)
		}
		if len(got) != 5*k {
			t.Fatalf("%d rows: %d written (%v)", k, len(got)/5, sizes)
		}
		for i := range k {
			if got[5*i] != int64(i+1) {
				t.Fatalf("%d rows: row %d is rid %v", k, i, got[5*i])
			}
		}
	}
}

// TestStatementsFollowTheIndexes checks, for every table and both forms
// of statements (multi-row INSERTs, and one INSERT from arrays), that rows
// put in any order go out in the order of the table's value index, read
// back from the statements' arguments by column name, and that every row
// goes out once with the values it was put with.
func TestStatementsFollowTheIndexes(t *testing.T) {
	t.Run("values", func(t *testing.T) {
		testStatementsFollowTheIndexes(t, func(r *indexRows, tbl int) []any {
			var args []any
			for _, s := range r.statements(nil, "INSERT") {
				if s.Query != insertRows("INSERT", tbl, len(s.Args)/len(rowTables[tbl].cols)) {
					t.Fatalf("%s: statement %s", rowTables[tbl].name, s.Query)
				}
				args = append(args, s.Args...)
			}
			return args
		})
	})
	t.Run("arrays", func(t *testing.T) {
		testStatementsFollowTheIndexes(t, func(r *indexRows, tbl int) []any {
			stmts := r.arrayStatements(nil)
			if len(stmts) != 1 || stmts[0].Query != rowTables[tbl].unnest || len(stmts[0].Args) != len(rowTables[tbl].cols) {
				t.Fatalf("%s: %d statements, want one INSERT from arrays: %v", rowTables[tbl].name, len(stmts), stmts)
			}
			// The arrays, one per column, read back as rows.
			cols := make([]reflect.Value, len(stmts[0].Args))
			for k, a := range stmts[0].Args {
				cols[k] = reflect.ValueOf(a)
				if cols[k].Kind() != reflect.Slice || cols[k].Len() != cols[0].Len() {
					t.Fatalf("%s: column %d is %T of %d, want a slice of %d", rowTables[tbl].name, k, a, cols[k].Len(), cols[0].Len())
				}
			}
			var args []any
			for i := range cols[0].Len() {
				for _, c := range cols {
					args = append(args, c.Index(i).Interface())
				}
			}
			return args
		})
	})
}

func testStatementsFollowTheIndexes(t *testing.T, written func(r *indexRows, tbl int) []any) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(vals ...string) string { return vals[rnd.IntN(len(vals))] }
	for tbl, rt := range rowTables {
		var r indexRows
		want := map[string]int{}
		for range 300 {
			rw := row{rid: rnd.Int64N(5), pid: rnd.Int64N(3), grp: rnd.IntN(2),
				a: pick("", "a", "b", "é"), b: pick("x", "y", "Z"), c: pick("u", "v"),
				x: rnd.Int64N(4) - 2, y: rnd.Int64N(3), f: float64(rnd.IntN(5)) / 2}
			r.put(tbl, rw)
			var vals []any
			for _, c := range rt.cols {
				vals = append(vals, c.field.value(&rw))
			}
			want[fmt.Sprint(vals...)]++
		}
		cols := strings.Split(rt.columns, ", ")
		var prev []any
		{
			args := written(&r, tbl)
			for i := 0; i < len(args); i += len(cols) {
				vals := args[i : i+len(cols)]
				want[fmt.Sprint(vals...)]--
				if prev != nil {
					for _, name := range strings.Split(rt.index, ", ") {
						j := slices.Index(cols, name)
						c := compareArgs(prev[j], vals[j])
						if c < 0 {
							break
						}
						if c > 0 {
							t.Fatalf("%s: %v before %v, against (%s)", rt.name, prev, vals, rt.index)
						}
					}
				}
				prev = vals
			}
		}
		for k, n := range want {
			if n != 0 {
				t.Errorf("%s: row %s written %d times too few", rt.name, k, n)
			}
		}
	}
}

// compareArgs orders two arguments of one column as the databases do.
func compareArgs(a, b any) int {
	switch x := a.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case int:
		return cmp.Compare(x, b.(int))
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	}
	panic(fmt.Sprintf("an argument of type %T", a))
}
