package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/rest"
	"smartfhir/internal/search"
	"smartfhir/internal/smart"
	"smartfhir/internal/store"
	"smartfhir/internal/store/sqlstore"
)

// authConfig is the authorization server's configuration on db; settings,
// when given, are the serve command's flags.
func authConfig(db *sqlstore.DB, baseURL string, logger *slog.Logger, settings ...*authSettings) smart.Config {
	cfg := smart.Config{
		Issuer:   baseURL,
		FHIRBase: baseURL + "/fhir",
		Store:    db.Auth(),
		Logger:   logger,
	}
	for _, f := range settings {
		f.apply(&cfg)
	}
	return cfg
}

// newAuthServer is the authorization server on db, for the commands that
// administer clients, users, launches and keys (they show no pages, so it
// has no encounter picker).
func newAuthServer(db *sqlstore.DB, baseURL string, logger *slog.Logger, settings ...*authSettings) (*smart.Server, error) {
	return smart.New(authConfig(db, baseURL, logger, settings...))
}

// mountAuth builds the authorization server and registers its routes
// (/.well-known/openid-configuration, /fhir/.well-known/smart-configuration,
// /oauth/*, /login, /consent) on mux. Its standalone encounter picker
// searches db's Encounters with reg. The FHIR API checks bearer tokens with the
// returned server's Authenticate, and its CapabilityStatement takes
// rest.security from CapabilitySecurity.
func mountAuth(mux *http.ServeMux, db *sqlstore.DB, reg *search.Registry, baseURL string, logger *slog.Logger, settings ...*authSettings) (*smart.Server, error) {
	cfg := authConfig(db, baseURL, logger, settings...)
	if reg != nil {
		cfg.Encounters = &encounterFinder{store: db, registry: reg}
		cfg.Panels = &panelFinder{store: db, registry: reg, base: cfg.FHIRBase, now: time.Now}
	}
	srv, err := smart.New(cfg)
	if err != nil {
		return nil, err
	}
	srv.Register(mux)
	return srv, nil
}

// encounterFinder lists a patient's Encounters from the FHIR store for the
// consent page's encounter picker (SMART App Launch 2.2
// context-standalone-encounter).
type encounterFinder struct {
	store    store.Store
	registry *search.Registry
}

var _ smart.EncounterFinder = (*encounterFinder)(nil)

// PatientEncounters runs Encounter?patient=Patient/{id}&_sort=-date&_count={limit}:
// the patient's encounters, latest period first.
func (f *encounterFinder) PatientEncounters(ctx context.Context, patientID string, limit int) (_ []smart.EncounterChoice, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("encounters of Patient/%s: %w", patientID, err)
		}
	}()
	if !fhir.ValidID(patientID) {
		return nil, errors.New("invalid patient id")
	}
	q, _, err := f.registry.Parse("Encounter", url.Values{
		"patient": {"Patient/" + patientID},
		"_sort":   {"-date"},
		"_count":  {strconv.Itoa(limit)},
	}, true)
	if err != nil {
		return nil, err
	}
	res, err := f.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]smart.EncounterChoice, 0, len(res.Matches))
	for _, v := range res.Matches {
		c, err := encounterChoice(v)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// encounterChoice reads what the picker shows of an R4 Encounter.
func encounterChoice(v *store.Version) (smart.EncounterChoice, error) {
	type coding struct{ Code, Display string }
	var e struct {
		Status string
		Class  coding
		Type   []struct {
			Text   string
			Coding []coding
		}
		Period struct{ Start, End string }
	}
	if err := json.Unmarshal(v.Body, &e); err != nil {
		return smart.EncounterChoice{}, fmt.Errorf("reading Encounter/%s: %w", v.ID, err)
	}
	c := smart.EncounterChoice{ID: v.ID, Start: e.Period.Start, End: e.Period.End, Status: e.Status, Class: e.Class.Display}
	if c.Class == "" {
		c.Class = e.Class.Code
	}
	if len(e.Type) > 0 {
		t := e.Type[0]
		c.Type = t.Text
		for _, cd := range t.Coding {
			if c.Type != "" {
				break
			}
			c.Type = cd.Display
		}
		for _, cd := range t.Coding {
			if c.Type != "" {
				break
			}
			c.Type = cd.Code
		}
	}
	return c, nil
}

// fhirAuth adapts the authorization server's bearer check to
// rest.Authenticator: the access policy compiled when the token was
// checked (smart.AccessInfo.Policy, cached with it).
type fhirAuth struct{ srv *smart.Server }

var _ rest.Authenticator = fhirAuth{}

// Authenticate checks bearer (smart.Server.Authenticate, cached for
// --token-cache-ttl) and returns its policy.
func (f fhirAuth) Authenticate(ctx context.Context, bearer string) (*access.Policy, error) {
	info, err := f.srv.Authenticate(ctx, bearer)
	if errors.Is(err, smart.ErrInvalidToken) {
		return nil, access.ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	return info.Policy, nil
}

// panelFinder finds a practitioner's patients in the FHIR store: those
// whose Patient.generalPractitioner is the practitioner, and the subjects
// of active CareTeams the practitioner is a current participant of.
type panelFinder struct {
	store    store.Store
	registry *search.Registry
	base     string // the FHIR base, for absolute references
	now      func() time.Time
}

var _ smart.PanelFinder = (*panelFinder)(nil)

// Panel runs Patient?general-practitioner={p} and
// CareTeam?participant={p}&status=active, all pages of each.
func (f *panelFinder) Panel(ctx context.Context, practitioner string) ([]string, error) {
	var out []string
	err := f.each(ctx, "Patient", url.Values{"general-practitioner": {practitioner}}, func(v *store.Version) error {
		out = append(out, v.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := f.now()
	err = f.each(ctx, "CareTeam", url.Values{"participant": {practitioner}, "status": {"active"}}, func(v *store.Version) error {
		var ct struct {
			Subject     struct{ Reference string }
			Participant []struct {
				Member struct{ Reference string }
				Period struct{ Start, End string }
			}
		}
		if err := json.Unmarshal(v.Body, &ct); err != nil {
			return fmt.Errorf("reading CareTeam/%s: %w", v.ID, err)
		}
		subject, ok := fhir.ParseReference(ct.Subject.Reference, f.base)
		if !ok || subject.Type != "Patient" {
			return nil
		}
		for _, p := range ct.Participant {
			member, ok := fhir.ParseReference(p.Member.Reference, f.base)
			if ok && member.Type+"/"+member.ID == practitioner && periodCovers(p.Period.Start, p.Period.End, now) {
				out = append(out, subject.ID)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// periodCovers reports whether a Period (its start and end, either
// absent) includes t; an unreadable bound counts as not covering.
func periodCovers(start, end string, t time.Time) bool {
	if start != "" {
		d, err := fhir.ParseDateTime(start)
		if err != nil {
			return false
		}
		if low, _ := d.Range(); t.Before(low) {
			return false
		}
	}
	if end != "" {
		d, err := fhir.ParseDateTime(end)
		if err != nil {
			return false
		}
		if _, high := d.Range(); !t.Before(high) {
			return false
		}
	}
	return true
}

// each calls fn with every current resource of typ matching params.
func (f *panelFinder) each(ctx context.Context, typ string, params url.Values, fn func(*store.Version) error) error {
	params.Set("_count", "500")
	q, _, err := f.registry.Parse(typ, params, true)
	if err != nil {
		return err
	}
	for {
		res, err := f.store.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("%s search for a panel: %w", typ, err)
		}
		for _, v := range res.Matches {
			if err := fn(v); err != nil {
				return err
			}
		}
		if res.Next == "" {
			return nil
		}
		q.Cursor = res.Next
	}
}
