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
	"strings"

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
// rest.Authenticator: the token's grant becomes the access policy of the
// request.
type fhirAuth struct{ srv *smart.Server }

var _ rest.Authenticator = fhirAuth{}

// Authenticate checks bearer (smart.Server.Authenticate, cached for
// --token-cache-ttl) and compiles its policy. user/ scopes reach the
// user's patients: a patient user's own record and those they act for, a
// practitioner's assigned patients (the user's --patients list).
func (f fhirAuth) Authenticate(ctx context.Context, bearer string) (*access.Policy, error) {
	info, err := f.srv.Authenticate(ctx, bearer)
	if errors.Is(err, smart.ErrInvalidToken) {
		return nil, access.ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	g := access.Grant{Scopes: info.Scopes, Patient: info.Patient, Who: access.Principal{
		ClientID: info.ClientID,
		Username: info.Username,
		FHIRUser: info.FHIRUser,
		Admin:    info.Role == smart.RoleAdmin,
	}}
	switch info.Role {
	case smart.RolePatient, smart.RoleRelatedPerson, smart.RolePractitioner:
		g.UserPatients = slices.Clone(info.UserPatients)
		if own, ok := strings.CutPrefix(info.FHIRUser, "Patient/"); ok && info.Role == smart.RolePatient {
			g.UserPatients = append(g.UserPatients, own)
		}
	}
	return access.NewPolicy(g), nil
}
