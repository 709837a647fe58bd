package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"smartfhir/internal/fhir"
)

// Stored is an event as the database keeps it: Seq is its place in the
// append-only log and the id of the AuditEvent that shows it.
type Stored struct {
	Seq int64
	Event
}

// Query selects stored events, newest first.
type Query struct {
	// Patient keeps events that touched this patient's data.
	Patient string
	// FHIRUser keeps events of this user ("Practitioner/7"); Agent those
	// whose client id or username is Agent.
	FHIRUser, Agent string
	// Interactions keeps events of one of these interactions.
	Interactions []string
	// From and To keep events recorded in [From, To); zero for open ends.
	From, To time.Time
	// Before keeps events older than this Seq (paging); 0 for the newest.
	Before int64
	// Count is the page size.
	Count int
}

// Store is the database side of the audit log: appending (Sink) and
// reading back.
type Store interface {
	Sink
	// Search returns up to q.Count events matching q, newest first.
	Search(ctx context.Context, q Query) ([]Stored, error)
	// Get returns the event with sequence number seq; a fhir.NotFound
	// error when there is none.
	Get(ctx context.Context, seq int64) (*Stored, error)
}

// The search parameters of GET [base]/AuditEvent, with the R4
// SearchParameter each stands for.
var searchParams = []struct{ Name, Type, Doc string }{
	{"patient", "reference", "events that touched this patient's data (Patient/{id} or {id})"},
	{"agent", "reference", "events of this user (Practitioner/{id}, Patient/{id}, …), or whose client id or username is the value"},
	{"date", "date", "when the event was recorded; prefixes eq, ne is not supported, gt, ge, lt, le; repeat for a range"},
	{"subtype", "token", "the FHIR interaction (read, search-type, create, …); comma for several"},
	{"_count", "number", "page size"},
}

// SearchParams lists the parameters of AuditEvent search, for the
// CapabilityStatement: name, type and documentation.
func SearchParams() [][3]string {
	out := make([][3]string, 0, len(searchParams))
	for _, p := range searchParams {
		if !strings.HasPrefix(p.Name, "_") {
			out = append(out, [3]string{p.Name, p.Type, p.Doc})
		}
	}
	return out
}

// CursorParam carries the paging position in next links.
const CursorParam = "_cursor"

// ParseQuery reads AuditEvent search parameters. count bounds the page
// size: def when absent, at most max. Unknown parameters and bad values
// are Invalid errors: this is an administrator's tool, and a silently
// ignored filter would show records that were not asked for.
func ParseQuery(params url.Values, def, max int) (Query, error) {
	q := Query{Count: def}
	for name, vals := range params {
		for _, v := range vals {
			if err := q.set(name, v, max); err != nil {
				return Query{}, err
			}
		}
	}
	return q, nil
}

func (q *Query) set(name, v string, max int) error {
	switch name {
	case "patient":
		id := strings.TrimPrefix(v, "Patient/")
		if !fhir.ValidID(id) {
			return fhir.Errorf(fhir.Invalid, "patient=%q is not a Patient reference", v)
		}
		if q.Patient != "" && q.Patient != id {
			return fhir.Errorf(fhir.Invalid, "give one patient per search")
		}
		q.Patient = id
	case "agent":
		switch r, ok := fhir.ParseReference(v, ""); {
		case ok:
			q.FHIRUser = r.Type + "/" + r.ID
		case v != "" && !strings.ContainsAny(v, ", "):
			q.Agent = v
		default:
			return fhir.Errorf(fhir.Invalid, "agent=%q is neither a reference nor a client id or username", v)
		}
	case "date":
		return q.date(v)
	case "subtype":
		for s := range strings.SplitSeq(v, ",") {
			_, code, found := strings.Cut(s, "|")
			if !found {
				code = s
			}
			if code == "" {
				return fhir.Errorf(fhir.Invalid, "subtype=%q names no interaction", v)
			}
			q.Interactions = append(q.Interactions, code)
		}
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fhir.Errorf(fhir.Invalid, "_count=%q is not a positive number", v)
		}
		q.Count = min(n, max)
	case CursorParam:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fhir.Errorf(fhir.Invalid, "the paging cursor %q is not valid", v)
		}
		q.Before = n
	case "_format", "_pretty":
	default:
		names := make([]string, 0, len(searchParams))
		for _, p := range searchParams {
			names = append(names, p.Name)
		}
		return fhir.Errorf(fhir.Invalid, "AuditEvent search does not support the parameter %q (supported: %s)", name, strings.Join(names, ", "))
	}
	return nil
}

// date narrows the window by one date parameter (search.html#date:
// the event's instant compared with the range the value stands for).
func (q *Query) date(v string) error {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	d, err := fhir.ParseDateTime(v)
	if err != nil {
		return fhir.Errorf(fhir.Invalid, "date: %v", err)
	}
	low, high := d.Range()
	from, to := time.Time{}, time.Time{}
	switch prefix {
	case "eq":
		from, to = low, high
	case "ge":
		from = low
	case "gt":
		from = high
	case "le":
		to = high
	case "lt":
		to = low
	default:
		return fhir.Errorf(fhir.Invalid, "date: the prefix %q is not supported on AuditEvent (eq, gt, ge, lt, le)", prefix)
	}
	if !from.IsZero() && from.After(q.From) {
		q.From = from
	}
	if !to.IsZero() && (q.To.IsZero() || to.Before(q.To)) {
		q.To = to
	}
	return nil
}

// Terminology of the rendered AuditEvents.
const (
	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysInteraction = "http://hl7.org/fhir/restful-interaction"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysDCM         = "http://dicom.nema.org/resources/ontology/DCM"
)

// Resource renders a stored event as an R4 AuditEvent. base is the FHIR
// base URL, issuer the authorization server's (the namespace of client
// ids and usernames).
func (s *Stored) Resource(base, issuer string) []byte {
	type coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	type identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	type ref struct {
		Reference  string      `json:"reference,omitempty"`
		Identifier *identifier `json:"identifier,omitempty"`
		Display    string      `json:"display,omitempty"`
	}
	type concept struct {
		Coding []coding `json:"coding"`
	}
	type network struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	}
	type agent struct {
		Type      *concept `json:"type,omitempty"`
		Who       ref      `json:"who"`
		AltID     string   `json:"altId,omitempty"`
		Name      string   `json:"name,omitempty"`
		Requestor bool     `json:"requestor"`
		Network   *network `json:"network,omitempty"`
	}
	type entity struct {
		What        *ref    `json:"what,omitempty"`
		Type        *coding `json:"type,omitempty"`
		Role        *coding `json:"role,omitempty"`
		Description string  `json:"description,omitempty"`
		Query       string  `json:"query,omitempty"`
	}
	type meta struct {
		LastUpdated string `json:"lastUpdated"`
	}
	e := &s.Event
	recorded := fhir.FormatInstant(e.Time)
	var net *network
	if e.Source != "" {
		net = &network{Address: e.Source, Type: "2"} // 2 = IP address
	}
	var agents []agent
	application := &concept{Coding: []coding{{System: sysDCM, Code: "110150", Display: "Application"}}}
	switch {
	case e.Username != "" || e.FHIRUser != "":
		u := agent{AltID: e.Username, Name: e.Username, Requestor: true, Network: net}
		if e.FHIRUser != "" {
			u.Who.Reference = e.FHIRUser
		} else {
			u.Who.Identifier = &identifier{System: issuer + "/users", Value: e.Username}
		}
		agents = append(agents, u)
		if e.ClientID != "" {
			agents = append(agents, agent{Type: application, Who: ref{Identifier: &identifier{System: issuer + "/clients", Value: e.ClientID}}})
		}
	case e.ClientID != "":
		agents = append(agents, agent{Type: application, Who: ref{Identifier: &identifier{System: issuer + "/clients", Value: e.ClientID}}, Requestor: true, Network: net})
	default:
		agents = append(agents, agent{Who: ref{Display: "unauthenticated request"}, Requestor: true, Network: net})
	}
	var entities []entity
	for _, p := range e.Patients {
		entities = append(entities, entity{
			What: &ref{Reference: "Patient/" + p},
			Type: &coding{System: sysEntityType, Code: "1", Display: "Person"},
			Role: &coding{System: sysObjectRole, Code: "1", Display: "Patient"},
		})
	}
	for _, r := range e.Resources {
		if strings.HasPrefix(r, "Patient/") && slices.Contains(e.Patients, r[len("Patient/"):]) {
			continue
		}
		entities = append(entities, entity{What: &ref{Reference: r}, Type: &coding{System: sysEntityType, Code: "2", Display: "System Object"}})
	}
	if e.Query != "" || strings.HasPrefix(e.Interaction, "search") {
		desc := e.Type
		if e.Query != "" {
			desc += "?" + e.Query
		}
		entities = append(entities, entity{
			Type:        &coding{System: sysEntityType, Code: "2", Display: "System Object"},
			Role:        &coding{System: sysObjectRole, Code: "24", Display: "Query"},
			Description: desc,
			Query:       base64.StdEncoding.EncodeToString([]byte(desc)),
		})
	}
	outcome, desc := "0", "HTTP "+strconv.Itoa(e.Status)
	switch {
	case e.Status >= 500:
		outcome = "8"
	case e.Status >= 400:
		outcome = "4"
	}
	if e.RequestID != "" {
		desc += "; request id " + e.RequestID
	}
	doc := struct {
		ResourceType string   `json:"resourceType"`
		ID           string   `json:"id"`
		Meta         meta     `json:"meta"`
		Type         coding   `json:"type"`
		Subtype      []coding `json:"subtype,omitempty"`
		Action       string   `json:"action,omitempty"`
		Recorded     string   `json:"recorded"`
		Outcome      string   `json:"outcome"`
		OutcomeDesc  string   `json:"outcomeDesc"`
		Agent        []agent  `json:"agent"`
		Source       struct {
			Observer ref      `json:"observer"`
			Type     []coding `json:"type"`
		} `json:"source"`
		Entity []entity `json:"entity,omitempty"`
	}{
		ResourceType: "AuditEvent",
		ID:           strconv.FormatInt(s.Seq, 10),
		Meta:         meta{LastUpdated: recorded},
		Type:         coding{System: sysEventType, Code: "rest", Display: "RESTful Operation"},
		Action:       action(e.Interaction),
		Recorded:     recorded,
		Outcome:      outcome,
		OutcomeDesc:  desc,
		Agent:        agents,
		Entity:       entities,
	}
	if e.Interaction != "" && e.Interaction != "unknown" {
		doc.Subtype = []coding{{System: sysInteraction, Code: e.Interaction}}
	}
	doc.Source.Observer = ref{Display: base}
	doc.Source.Type = []coding{{System: sysSourceType, Code: "4", Display: "Application Server"}}
	b, err := json.Marshal(doc)
	if err != nil {
		// Only strings, bools and slices of them: Marshal cannot fail.
		panic(fmt.Sprintf("audit: rendering AuditEvent: %v", err))
	}
	return b
}

// action is AuditEvent.action (C R U D E) for an interaction.
func action(interaction string) string {
	switch interaction {
	case "create":
		return "C"
	case "read", "vread", "history-instance", "history-type", "history-system":
		return "R"
	case "update", "patch":
		return "U"
	case "delete":
		return "D"
	case "search-type", "search-system", "batch", "transaction", "export":
		return "E"
	}
	return ""
}
