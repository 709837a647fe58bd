package smart

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// handleIntrospect is RFC 7662 §2. The caller authenticates as a
// confidential client; any token that is not active answers only
// {"active": false} (§2.2).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(r, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	c, method, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if method == authPublic || c.Type == Public {
		s.writeError(w, r, &oauthError{Code: "invalid_client", Description: "introspection needs a confidential client"})
		return
	}
	inactive := map[string]any{"active": false}
	tv := form.Get("token")
	if tv == "" || len(tv) > 512 {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	tok, g, _, err := s.activeToken(ctx, hash(tv), s.now())
	if errors.Is(err, ErrInvalidToken) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if out, err := s.grantOptedOut(ctx, g); err != nil {
		s.writeError(w, r, err)
		return
	} else if out {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{
		"active":    true,
		"client_id": tok.ClientID,
		"scope":     tok.Scopes,
		"exp":       tok.Expires.Unix(),
		"iat":       tok.Issued.Unix(),
		"sub":       subject(g),
		"iss":       s.cfg.Issuer,
		"aud":       s.cfg.FHIRBase,
	}
	if tok.Kind == AccessToken {
		out["token_type"] = "Bearer"
	} else {
		out["token_type"] = "refresh_token"
	}
	if g.Username != "" {
		out["username"] = g.Username
	}
	if g.Patient != "" {
		out["patient"] = g.Patient
	}
	if g.Encounter != "" {
		out["encounter"] = g.Encounter
	}
	if g.FHIRUser != "" {
		out["fhirUser"] = s.cfg.FHIRBase + "/" + g.FHIRUser
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRevoke is RFC 7009 §2. A refresh token ends its whole grant
// (§2.1: "SHOULD also invalidate all access tokens based on the same
// authorization grant"); an access token ends alone. An unknown, expired or
// already revoked token answers 200 (§2.2: "invalid tokens do not cause an
// error response"). A token issued to another client is refused with
// unauthorized_client (§2.1: the server "verifies whether the token was
// issued to the client making the revocation request. If this validation
// fails, the request is refused").
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(r, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	c, _, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tv := form.Get("token")
	if tv == "" {
		s.writeError(w, r, errf("invalid_request", "token is required"))
		return
	}
	h := hash(tv)
	tok, err := s.store.Token(ctx, h)
	switch {
	case errors.Is(err, ErrNotFound):
		err = nil
	case err != nil:
	case tok.ClientID != c.ID:
		err = errf("unauthorized_client", "the token was not issued to this client")
	case tok.Kind == RefreshToken:
		err = s.store.RevokeGrant(ctx, tok.GrantID)
		s.forgetAllBearers()
	default:
		err = s.store.RevokeToken(ctx, h)
		s.forgetBearer(h)
	}
	if errors.Is(err, ErrNotFound) {
		err = nil // deleted by a sweep in between: gone is what was asked
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleUserinfo is OpenID Connect Core §5.3, answering for an access token
// whose grant includes openid.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	bearer := bearerToken(r)
	if bearer == "" {
		// RFC 6750 §3.1: a request without authentication gets the
		// challenge without an error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="smartfhir"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	info, err := s.Authenticate(r.Context(), bearer)
	if err != nil || info.Username == "" || !info.Scopes.Has("openid") {
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="smartfhir", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	out := map[string]any{"sub": info.Username}
	if info.FHIRUser != "" && info.Scopes.Has("fhirUser") {
		out["fhirUser"] = s.cfg.FHIRBase + "/" + info.FHIRUser
	}
	if info.Scopes.Has("profile") {
		out["preferred_username"] = info.Username
	}
	writeJSON(w, http.StatusOK, out)
}

// handleStyle serves the smart_style_url document (SMART App Launch 2.2
// §"Styling").
func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = jsonEncode(w, map[string]any{
		"color_background":     "#f6f7f9",
		"color_error":          "#b00020",
		"color_highlight":      "#1d5fa8",
		"color_modal_backdrop": "#00000080",
		"color_success":        "#2e7d32",
		"color_text":           "#1c1e21",
		"dim_border_radius":    "4px",
		"dim_font_size":        "16px",
		"dim_spacing_size":     "16px",
		"font_family_body":     "system-ui, sans-serif",
		"font_family_heading":  "system-ui, sans-serif",
	})
}
