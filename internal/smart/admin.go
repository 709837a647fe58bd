package smart

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
)

// ClientSpec is what registering a client takes.
type ClientSpec struct {
	Name         string
	Type         ClientType
	RedirectURIs []string
	// Scopes is the set the client may be granted; wildcards cover every
	// specific and granular scope they imply.
	Scopes    string
	JWKSURL   string
	JWKS      []byte
	LaunchURL string
	Approve   bool
}

// RegisterClient checks spec and stores a new client. It returns the client
// id and, for a symmetric client, the secret (shown once: only its hash is
// kept).
func (s *Server) RegisterClient(ctx context.Context, spec ClientSpec) (id, secret string, err error) {
	if strings.TrimSpace(spec.Name) == "" {
		return "", "", errors.New("a client needs a name")
	}
	switch spec.Type {
	case Public, ConfidentialSymmetric, ConfidentialAsymmetric:
	default:
		return "", "", fmt.Errorf("client type %q: want public, confidential-symmetric or confidential-asymmetric", spec.Type)
	}
	for _, u := range spec.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return "", "", err
		}
	}
	if len(spec.RedirectURIs) == 0 && spec.Type == Public {
		return "", "", errors.New("a public client needs a redirect URI")
	}
	if _, err := access.ParseSet(spec.Scopes); err != nil {
		return "", "", fmt.Errorf("scopes: %w", err)
	}
	if spec.LaunchURL != "" {
		if u, err := url.Parse(spec.LaunchURL); err != nil || !u.IsAbs() || u.Fragment != "" {
			return "", "", fmt.Errorf("launch URL %q must be absolute", spec.LaunchURL)
		}
	}
	c := &Client{Name: spec.Name, Type: spec.Type, RedirectURIs: spec.RedirectURIs, Scopes: access.MustParseSet(spec.Scopes).String(),
		LaunchURL: spec.LaunchURL, Status: Pending, Created: s.now()}
	if spec.Approve {
		c.Status = Approved
	}
	switch spec.Type {
	case ConfidentialAsymmetric:
		if (spec.JWKSURL == "") == (len(spec.JWKS) == 0) {
			return "", "", errors.New("an asymmetric client needs exactly one of a JWKS URL or a JWKS")
		}
		if spec.JWKSURL != "" {
			// The keys that authenticate the client must come over TLS
			// (RFC 7591 §2 jwks_uri; SMART Backend Services "TLS 1.2 or
			// higher"), except on loopback, for development and tests.
			u, err := url.Parse(spec.JWKSURL)
			if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && (isLoopback(u.Hostname()) || u.Hostname() == "localhost")) {
				return "", "", fmt.Errorf("JWKS URL %q must be an absolute https URL (http only on loopback)", spec.JWKSURL)
			}
			c.JWKSURL = spec.JWKSURL
		} else {
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(spec.JWKS, &set); err != nil || len(set.Keys) == 0 {
				return "", "", fmt.Errorf("JWKS: not a key set with keys")
			}
			for _, k := range set.Keys {
				if !k.IsPublic() || !k.Valid() {
					return "", "", fmt.Errorf("JWKS key %q: must be a valid public key", k.KeyID)
				}
			}
			c.JWKS = spec.JWKS
		}
	default:
		if spec.JWKSURL != "" || len(spec.JWKS) > 0 {
			return "", "", fmt.Errorf("only asymmetric clients have keys")
		}
	}
	// A client id is typed on command lines (clients approve ID), where
	// one starting with "-" would read as a flag: draw again (1 in 64).
	for c.ID == "" || strings.HasPrefix(c.ID, "-") {
		if c.ID, err = s.newID(); err != nil {
			return "", "", err
		}
	}
	if spec.Type == ConfidentialSymmetric {
		if secret, err = s.newSecret(); err != nil {
			return "", "", err
		}
		sum := sha256.Sum256([]byte(secret))
		c.SecretHash = sum[:]
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return "", "", fmt.Errorf("storing client: %w", err)
	}
	return c.ID, secret, nil
}

var privateScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$`)

// checkRedirectURI allows https URIs, http only on loopback or localhost
// (RFC 8252 §7.3, for development), and private-use schemes in reverse
// domain form (RFC 8252 §7.1). Fragments are never allowed (RFC 6749
// §3.1.2).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must be absolute, without a fragment", raw)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
	case u.Scheme == "http" && (isLoopback(u.Hostname()) || u.Hostname() == "localhost"):
	case privateScheme.MatchString(u.Scheme):
	default:
		return fmt.Errorf("redirect URI %q: want https, http on loopback, or a private-use scheme like com.example.app", raw)
	}
	return nil
}

// UserSpec is what adding a user takes.
type UserSpec struct {
	Username string
	Password string
	Role     Role
	FHIRUser string
	Patients []string
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,100}$`)

// AddUser checks spec, hashes the password and stores the user.
func (s *Server) AddUser(ctx context.Context, spec UserSpec) error {
	if !usernamePattern.MatchString(spec.Username) {
		return fmt.Errorf("user name %q: letters, digits and . _ @ - only", spec.Username)
	}
	if len(spec.Password) < 8 {
		return errors.New("the password must have at least 8 characters")
	}
	switch spec.Role {
	case RolePatient, RolePractitioner, RoleRelatedPerson, RoleAdmin:
	default:
		return fmt.Errorf("role %q: want patient, practitioner, related-person or admin", spec.Role)
	}
	if spec.FHIRUser != "" {
		typ, id, ok := strings.Cut(spec.FHIRUser, "/")
		if !ok || (typ != "Patient" && typ != "Practitioner" && typ != "RelatedPerson") || !fhir.ValidID(id) {
			return fmt.Errorf("fhirUser %q: want Patient/id, Practitioner/id or RelatedPerson/id", spec.FHIRUser)
		}
	}
	if spec.Role == RolePatient && !strings.HasPrefix(spec.FHIRUser, "Patient/") {
		return errors.New("a patient user needs --fhir-user Patient/id")
	}
	for _, p := range spec.Patients {
		if !fhir.ValidID(p) {
			return fmt.Errorf("patient id %q is not valid", p)
		}
	}
	h, err := HashPassword(s.rand, spec.Password)
	if err != nil {
		return err
	}
	u := &User{Username: spec.Username, PasswordHash: h, Role: spec.Role, FHIRUser: spec.FHIRUser, Patients: spec.Patients, Created: s.now()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("storing user %q: %w", spec.Username, err)
	}
	return nil
}

// SetClientStatus approves, denies or disables a client. Any status but
// approved also revokes every grant of the client, so that its tokens end
// for good: approving it again later does not bring them back. Token checks
// read the client's status too, so its tokens stop working at once on this
// replica and within BearerCacheTTL on others.
func (s *Server) SetClientStatus(ctx context.Context, id string, st ClientStatus) error {
	switch st {
	case Pending, Approved, Denied, Disabled:
	default:
		return fmt.Errorf("status %q is not a client status", st)
	}
	if err := s.store.SetClientStatus(ctx, id, st); err != nil {
		return err
	}
	if st == Approved {
		return nil
	}
	if err := s.store.RevokeClientGrants(ctx, id); err != nil {
		return err
	}
	s.forgetAllBearers()
	return nil
}

// Sweep deletes the codes, tokens, launches, sessions and assertion ids
// that have expired, the client_credentials grants whose tokens have gone,
// and failed-login counts that no longer lock anything. Serve runs it now
// and then; any replica may.
func (s *Server) Sweep(ctx context.Context) error {
	now := s.now()
	if err := s.store.DeleteExpired(ctx, now); err != nil {
		return err
	}
	return s.store.DeleteLoginStates(ctx, now.Add(-s.cfg.LoginLockout))
}
