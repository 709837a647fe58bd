package smart

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idTokenLifetime is the lifetime of the only tokens the keys sign.
const idTokenLifetime = time.Hour

// keyRefresh is how often a replica rereads the keys, so that a rotation
// made by the CLI or another replica is picked up.
const keyRefresh = time.Minute

// retiredKeyKept is how long a retired key stays published. A replica that
// has not yet reread the keys goes on signing with the retired one for up
// to keyRefresh, and what it signs lives idTokenLifetime more.
const retiredKeyKept = idTokenLifetime + keyRefresh

// keyRing caches the signing keys read from the store.
type keyRing struct {
	mu      sync.Mutex
	loaded  time.Time
	current *parsedKey
	public  []*parsedKey
}

type parsedKey struct {
	id  string
	key *rsa.PrivateKey
}

// keysLocked loads (or, on an empty database, makes) the signing keys.
func (s *Server) loadKeys(ctx context.Context) (*parsedKey, []*parsedKey, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	now := s.now()
	if s.keys.current != nil && now.Sub(s.keys.loaded) < keyRefresh {
		return s.keys.current, s.keys.public, nil
	}
	stored, err := s.store.SigningKeys(ctx, now.Add(-retiredKeyKept))
	if err != nil {
		return nil, nil, fmt.Errorf("reading signing keys: %w", err)
	}
	var current *parsedKey
	var public []*parsedKey
	for _, k := range stored {
		priv, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		rk, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("signing key %s is not RSA", k.ID)
		}
		pk := &parsedKey{k.ID, rk}
		public = append(public, pk)
		if current == nil && k.Retired.IsZero() {
			current = pk
		}
	}
	if current == nil {
		k, err := s.newSigningKey(ctx)
		if err != nil {
			return nil, nil, err
		}
		current = k
		public = append([]*parsedKey{k}, public...)
	}
	s.keys.current, s.keys.public, s.keys.loaded = current, public, now
	return current, public, nil
}

func (s *Server) newSigningKey(ctx context.Context) (*parsedKey, error) {
	rk, err := rsa.GenerateKey(s.rand, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		return nil, fmt.Errorf("encoding signing key: %w", err)
	}
	idb := make([]byte, 8)
	if _, err := s.rand.Read(idb); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	k := &SigningKey{ID: hex.EncodeToString(idb), PrivateKey: der, Created: s.now()}
	if err := s.store.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("storing signing key: %w", err)
	}
	return &parsedKey{k.ID, rk}, nil
}

// RotateKeys retires the current signing key and makes a new one. Retired
// keys stay in the JWKS for as long as an id_token they signed can live,
// counting the keyRefresh during which other replicas may still sign with
// them.
func (s *Server) RotateKeys(ctx context.Context) (kid string, err error) {
	if err := s.store.RetireSigningKeys(ctx, s.now()); err != nil {
		return "", fmt.Errorf("retiring signing keys: %w", err)
	}
	k, err := s.newSigningKey(ctx)
	if err != nil {
		return "", err
	}
	s.keys.mu.Lock()
	s.keys.current = nil
	s.keys.mu.Unlock()
	return k.id, nil
}

// JWKS returns the public signing keys (RFC 7517 §5).
func (s *Server) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	_, public, err := s.loadKeys(ctx)
	if err != nil {
		return nil, err
	}
	set := &jose.JSONWebKeySet{}
	for _, k := range public {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"})
	}
	return set, nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.JWKS(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	// Short enough that a rotation is seen well before a retired key goes.
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = jsonEncode(w, set)
}

// signIDToken signs an OpenID Connect id_token (OIDC Core §2) with RS256.
func (s *Server) signIDToken(ctx context.Context, claims map[string]any) (string, error) {
	k, _, err := s.loadKeys(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("id_token signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing id_token: %w", err)
	}
	return tok, nil
}
