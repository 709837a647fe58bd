package main

import (
	"log/slog"
	"net/http"

	"smartfhir/internal/smart"
	"smartfhir/internal/store/sqlstore"
)

// newAuthServer is the authorization server on db, for serve and for the
// commands that administer clients, users, launches and keys; settings,
// when given, are the serve command's flags.
func newAuthServer(db *sqlstore.DB, baseURL string, logger *slog.Logger, settings ...*authSettings) (*smart.Server, error) {
	cfg := smart.Config{
		Issuer:   baseURL,
		FHIRBase: baseURL + "/fhir",
		Store:    db.Auth(),
		Logger:   logger,
	}
	for _, f := range settings {
		f.apply(&cfg)
	}
	return smart.New(cfg)
}

// mountAuth builds the authorization server and registers its routes
// (/.well-known/openid-configuration, /fhir/.well-known/smart-configuration,
// /oauth/*, /login, /consent) on mux. The FHIR API checks bearer tokens with
// the returned server's Authenticate, and its CapabilityStatement takes
// rest.security from CapabilitySecurity.
func mountAuth(mux *http.ServeMux, db *sqlstore.DB, baseURL string, logger *slog.Logger, settings ...*authSettings) (*smart.Server, error) {
	srv, err := newAuthServer(db, baseURL, logger, settings...)
	if err != nil {
		return nil, err
	}
	srv.Register(mux)
	return srv, nil
}
