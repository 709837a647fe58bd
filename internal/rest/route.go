package rest

import (
	"strconv"
	"strings"

	"smartfhir/internal/fhir"
)

type routeKind int

const (
	routeRoot            routeKind = iota // [base]
	routeMetadata                         // [base]/metadata
	routeHistorySystem                    // [base]/_history
	routeType                             // [base]/[type]
	routeSearch                           // [base]/[type]/_search
	routeHistoryType                      // [base]/[type]/_history
	routeInstance                         // [base]/[type]/[id]
	routeHistoryInstance                  // [base]/[type]/[id]/_history
	routeVersion                          // [base]/[type]/[id]/_history/[vid]
)

// route is a parsed FHIR URL path (http.html §3.1.0.1.1).
type route struct {
	kind routeKind
	typ  string
	id   string
	vid  int64
}

// parseRoute parses the part of a URL path after the base ("" or "/..."),
// without allocating: read by id is the hot path.
func (a *API) parseRoute(path string) (route, error) {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return route{kind: routeRoot}, nil
	}
	var seg [5]string
	n := 0
	for n < len(seg) {
		var s string
		var more bool
		s, path, more = strings.Cut(path, "/")
		seg[n] = s
		n++
		if !more {
			path = ""
			break
		}
	}
	if path != "" {
		return route{}, notFoundPath()
	}
	switch {
	case n == 1 && seg[0] == "metadata":
		return route{kind: routeMetadata}, nil
	case n == 1 && seg[0] == "_history":
		return route{kind: routeHistorySystem}, nil
	case strings.HasPrefix(seg[0], "$"):
		return route{}, fhir.Errorf(fhir.NotSupported, "the operation %s is not supported", seg[0])
	}
	if !a.types[seg[0]] {
		return route{}, fhir.Errorf(fhir.NotFound, "unknown resource type %q", seg[0])
	}
	rt := route{kind: routeType, typ: seg[0]}
	if n == 1 {
		return rt, nil
	}
	switch {
	case n == 2 && seg[1] == "_search":
		rt.kind = routeSearch
		return rt, nil
	case n == 2 && seg[1] == "_history":
		rt.kind = routeHistoryType
		return rt, nil
	case strings.HasPrefix(seg[1], "$"):
		return route{}, fhir.Errorf(fhir.NotSupported, "the operation %s is not supported", seg[1])
	case !fhir.ValidID(seg[1]):
		return route{}, fhir.Errorf(fhir.Invalid, "%q is not a valid resource id", seg[1])
	}
	rt.id = seg[1]
	switch {
	case n == 2:
		rt.kind = routeInstance
		return rt, nil
	case seg[2] != "_history":
		if strings.HasPrefix(seg[2], "$") {
			return route{}, fhir.Errorf(fhir.NotSupported, "the operation %s is not supported", seg[2])
		}
		return route{}, notFoundPath()
	case n == 3:
		rt.kind = routeHistoryInstance
		return rt, nil
	case n == 4:
		v, err := strconv.ParseInt(seg[3], 10, 64)
		if err != nil || v < 1 {
			return route{}, fhir.Errorf(fhir.NotFound, "%q is not a version of %s/%s", seg[3], rt.typ, rt.id)
		}
		rt.kind, rt.vid = routeVersion, v
		return rt, nil
	}
	return route{}, notFoundPath()
}

func notFoundPath() error { return fhir.Errorf(fhir.NotFound, "no FHIR endpoint at this path") }
