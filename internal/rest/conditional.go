package rest

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// parseIfMatch reads an If-Match header (http.html §3.1.0.4.2): W/"n" or
// "n". It returns 0 when there is none.
func parseIfMatch(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, ok := parseETag(s)
	if !ok {
		return 0, fhir.Errorf(fhir.Invalid, "If-Match %q is not a version ETag such as W/\"1\"", s)
	}
	return v, nil
}

func parseETag(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	if len(s) < 3 || s[0] != '"' || s[len(s)-1] != '"' {
		return 0, false
	}
	v, err := strconv.ParseInt(s[1:len(s)-1], 10, 64)
	if err != nil || v < 1 {
		return 0, false
	}
	return v, true
}

// checkIfMatch compares the client's If-Match version with the current one.
func checkIfMatch(want int64, cur *store.Version) error {
	if want == 0 {
		return nil
	}
	if cur == nil {
		return fhir.Errorf(fhir.PreconditionFailed, "If-Match W/\"%d\" names a version of a resource that does not exist", want)
	}
	if cur.VersionID != want {
		return fhir.Errorf(fhir.PreconditionFailed, "If-Match W/\"%d\" does not match the current version %d of %s/%s", want, cur.VersionID, cur.Type, cur.ID)
	}
	return nil
}

// notModified applies If-None-Match and If-Modified-Since to a read or
// vread (http.html §3.1.0.4.2, RFC 9110 §13.1.2–3); If-None-Match wins
// when both are present.
func notModified(ifNoneMatch, ifModifiedSince string, v *store.Version) bool {
	if ifNoneMatch != "" {
		for tag := range strings.SplitSeq(ifNoneMatch, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return true
			}
			if n, ok := parseETag(tag); ok && n == v.VersionID {
				return true
			}
		}
		return false
	}
	if ifModifiedSince != "" {
		t, err := http.ParseTime(ifModifiedSince)
		if err != nil {
			// FHIR Bundle entries carry an instant instead of an HTTP date.
			dt, derr := fhir.ParseDateTime(ifModifiedSince)
			if derr != nil {
				return false // RFC 9110 §13.1.3: an invalid date is ignored
			}
			t = dt.Time
		}
		return !v.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

// versionHeaders sets ETag and Last-Modified (http.html §3.1.0.4).
func versionHeaders(h http.Header, v *store.Version) {
	h["Etag"] = []string{fhir.ETag(v.VersionID)}
	h["Last-Modified"] = []string{v.LastUpdated.UTC().Format(http.TimeFormat)}
}
