package smart

import (
	"encoding/json"
	"net/http"
	"slices"
)

// capabilities are the SMART App Launch 2.2 §"Capability Sets" this server
// always offers. context-standalone-encounter is added when an
// EncounterFinder is configured: the standalone encounter picker needs it.
var capabilities = []string{
	"launch-ehr", "launch-standalone", "authorize-post",
	"client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
	"sso-openid-connect",
	"context-banner", "context-style",
	"context-ehr-patient", "context-ehr-encounter",
	"context-standalone-patient",
	"permission-offline", "permission-online", "permission-patient", "permission-user",
	"permission-v1", "permission-v2",
}

var scopesSupported = []string{
	"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
	"offline_access", "online_access",
	"patient/*.cruds", "user/*.cruds", "system/*.cruds",
	"patient/*.read", "patient/*.write", "user/*.read", "user/*.write", "system/*.read", "system/*.write",
}

func (s *Server) capabilities() []string {
	if s.cfg.Encounters == nil {
		return capabilities
	}
	i := slices.Index(capabilities, "context-standalone-patient") + 1
	return slices.Insert(slices.Clone(capabilities), i, "context-standalone-encounter")
}

// SMARTConfiguration is the document of SMART App Launch 2.2
// §"Conformance: /.well-known/smart-configuration".
func (s *Server) SMARTConfiguration() map[string]any {
	iss := s.cfg.Issuer
	return map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + "/oauth/jwks",
		"authorization_endpoint":                iss + "/oauth/authorize",
		"token_endpoint":                        s.tokenURL,
		"introspection_endpoint":                iss + "/oauth/introspect",
		"revocation_endpoint":                   iss + "/oauth/revoke",
		"userinfo_endpoint":                     iss + "/oauth/userinfo",
		"management_endpoint":                   s.cfg.ManagementURL,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported":         scopesSupported,
		"response_types_supported": []string{"code"},
		"capabilities":             s.capabilities(),
	}
}

// OpenIDConfiguration is the OpenID Connect Discovery 1.0 §3 document.
func (s *Server) OpenIDConfiguration() map[string]any {
	iss := s.cfg.Issuer
	return map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/oauth/authorize",
		"token_endpoint":                                   s.tokenURL,
		"userinfo_endpoint":                                iss + "/oauth/userinfo",
		"jwks_uri":                                         iss + "/oauth/jwks",
		"introspection_endpoint":                           iss + "/oauth/introspect",
		"revocation_endpoint":                              iss + "/oauth/revoke",
		"response_types_supported":                         []string{"code"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"scopes_supported":                                 []string{"openid", "fhirUser", "profile", "offline_access", "online_access"},
		"claims_supported":                                 []string{"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser", "preferred_username"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
	}
}

// CapabilitySecurity is the CapabilityStatement.rest.security element that
// matches the discovery document: the SMART-on-FHIR service coding and the
// oauth-uris extension (SMART App Launch 2.2 §"Conformance", FHIR R4
// http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris).
func (s *Server) CapabilitySecurity() json.RawMessage {
	iss := s.cfg.Issuer
	ext := func(name, u string) map[string]any { return map[string]any{"url": name, "valueUri": u} }
	sec := map[string]any{
		"cors": true,
		"service": []any{map[string]any{
			"coding": []any{map[string]any{
				"system":  "http://terminology.hl7.org/CodeSystem/restful-security-service",
				"code":    "SMART-on-FHIR",
				"display": "SMART-on-FHIR",
			}},
			"text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
		}},
		"extension": []any{map[string]any{
			"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
			"extension": []any{
				ext("token", s.tokenURL),
				ext("authorize", iss+"/oauth/authorize"),
				ext("introspect", iss+"/oauth/introspect"),
				ext("revoke", iss+"/oauth/revoke"),
				ext("manage", s.cfg.ManagementURL),
			},
		}},
	}
	b, err := json.Marshal(sec)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}

func (s *Server) handleSMARTConfiguration(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = jsonEncode(w, s.SMARTConfiguration())
}

func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = jsonEncode(w, s.OpenIDConfiguration())
}
