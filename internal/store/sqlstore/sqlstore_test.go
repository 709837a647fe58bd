package sqlstore

import (
	"testing"
	"time"
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
