package smart

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore is a small in-memory Store for the tests of this package; the
// SQL one is tested by storetest against both databases.
type memStore struct {
	mu       sync.Mutex
	clients  map[string]Client
	users    map[string]User
	launches map[string]LaunchContext
	grants   map[string]Grant
	codes    map[string]Code
	tokens   map[string]Token
	keys     []SigningKey
	jtis     map[string]time.Time
	logins   map[string]LoginState
	sessions map[string]Session
	optouts  map[string]time.Time
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{clients: map[string]Client{}, users: map[string]User{}, launches: map[string]LaunchContext{},
		grants: map[string]Grant{}, codes: map[string]Code{}, tokens: map[string]Token{}, jtis: map[string]time.Time{},
		logins: map[string]LoginState{}, sessions: map[string]Session{}, optouts: map[string]time.Time{}}
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, ErrNotFound) }

func (m *memStore) CreateClient(_ context.Context, c *Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return ErrExists
	}
	m.clients[c.ID] = *c
	return nil
}

func (m *memStore) Client(_ context.Context, id string) (*Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return nil, notFound("client")
	}
	return &c, nil
}

func (m *memStore) Clients(context.Context) ([]*Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Client
	for _, c := range m.clients {
		out = append(out, &c)
	}
	return out, nil
}

func (m *memStore) SetClientStatus(_ context.Context, id string, s ClientStatus) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return notFound("client")
	}
	c.Status = s
	m.clients[id] = c
	return nil
}

func (m *memStore) CreateUser(_ context.Context, u *User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Username]; ok {
		return ErrExists
	}
	m.users[u.Username] = *u
	return nil
}

func (m *memStore) User(_ context.Context, name string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok {
		return nil, notFound("user")
	}
	return &u, nil
}

func (m *memStore) Users(context.Context) ([]*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*User
	for _, u := range m.users {
		out = append(out, &u)
	}
	return out, nil
}

func (m *memStore) CreateLaunch(_ context.Context, l *LaunchContext) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.launches[string(l.Hash)] = *l
	return nil
}

func (m *memStore) TakeLaunch(_ context.Context, h []byte) (*LaunchContext, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.launches[string(h)]
	if !ok {
		return nil, notFound("launch")
	}
	delete(m.launches, string(h))
	return &l, nil
}

func (m *memStore) Launch(_ context.Context, h []byte) (*LaunchContext, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.launches[string(h)]
	if !ok {
		return nil, notFound("launch")
	}
	return &l, nil
}

func (m *memStore) CreateGrant(_ context.Context, g *Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants[g.ID] = *g
	return nil
}

func (m *memStore) Grant(_ context.Context, id string) (*Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.grants[id]
	if !ok {
		return nil, notFound("grant")
	}
	return &g, nil
}

func (m *memStore) RevokeClientGrants(_ context.Context, clientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, g := range m.grants {
		if g.ClientID == clientID {
			g.Revoked = true
			m.grants[id] = g
		}
	}
	for k, t := range m.tokens {
		if t.ClientID == clientID {
			t.Revoked = true
			m.tokens[k] = t
		}
	}
	return nil
}

func (m *memStore) RevokeGrant(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.grants[id]
	if !ok {
		return notFound("grant")
	}
	m.revokeGrant(id)
	return nil
}

// revokeGrant ends grant id and its tokens; m.mu is held.
func (m *memStore) revokeGrant(id string) {
	g := m.grants[id]
	g.Revoked = true
	m.grants[id] = g
	for k, t := range m.tokens {
		if t.GrantID == id {
			t.Revoked = true
			m.tokens[k] = t
		}
	}
}

func (m *memStore) CreateCode(_ context.Context, c *Code) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[string(c.Hash)] = *c
	return nil
}

func (m *memStore) UseCode(_ context.Context, h []byte) (*Code, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[string(h)]
	if !ok {
		return nil, notFound("code")
	}
	before := c
	c.Used = true
	m.codes[string(h)] = c
	return &before, nil
}

func (m *memStore) CreateToken(_ context.Context, t *Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[string(t.Hash)] = *t
	return nil
}

func (m *memStore) Token(_ context.Context, h []byte) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[string(h)]
	if !ok {
		return nil, notFound("token")
	}
	return &t, nil
}

func (m *memStore) RotateToken(_ context.Context, h []byte) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[string(h)]
	if !ok {
		return nil, notFound("token")
	}
	before := t
	t.Rotated = true
	m.tokens[string(h)] = t
	return &before, nil
}

func (m *memStore) RevokeToken(_ context.Context, h []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[string(h)]
	if !ok {
		return notFound("token")
	}
	t.Revoked = true
	m.tokens[string(h)] = t
	return nil
}

func (m *memStore) CreateSigningKey(_ context.Context, k *SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, *k)
	return nil
}

func (m *memStore) SigningKeys(_ context.Context, since time.Time) ([]*SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*SigningKey
	for _, k := range slices.Backward(m.keys) {
		if k.Retired.IsZero() || k.Retired.After(since) {
			out = append(out, &k)
		}
	}
	return out, nil
}

func (m *memStore) RetireSigningKeys(_ context.Context, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].Retired.IsZero() {
			m.keys[i].Retired = at
		}
	}
	return nil
}

func (m *memStore) UseJTI(_ context.Context, client, jti string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := client + "\x00" + jti
	if _, ok := m.jtis[k]; ok {
		return ErrExists
	}
	m.jtis[k] = exp
	return nil
}

func (m *memStore) LoginState(_ context.Context, name string) (*LoginState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.logins[name]
	if !ok {
		return nil, notFound("login state")
	}
	return &s, nil
}

func (m *memStore) RecordLoginFailure(_ context.Context, key string, at time.Time, window time.Duration, max int, lockout time.Duration) (*LoginState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.logins[key]
	s.Key = key
	if s.LastFailure.Before(at.Add(-window)) {
		s.Failures = 0
	}
	s.Failures++
	s.LastFailure = at
	if s.Failures >= max {
		s.LockedUntil = at.Add(lockout)
	}
	m.logins[key] = s
	return &s, nil
}

func (m *memStore) ClearLoginFailures(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logins, key)
	return nil
}

func (m *memStore) DeleteLoginStates(_ context.Context, before time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.logins {
		if s.LastFailure.Before(before) && s.LockedUntil.Before(before) {
			delete(m.logins, k)
		}
	}
	return nil
}

func (m *memStore) PutSession(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[string(s.Hash)] = *s
	return nil
}

func (m *memStore) Session(_ context.Context, h []byte) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[string(h)]
	if !ok {
		return nil, notFound("session")
	}
	return &s, nil
}

func (m *memStore) DeleteSession(_ context.Context, h []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, string(h))
	return nil
}

func (m *memStore) DeleteExpired(_ context.Context, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := map[string]bool{}
	for k, tok := range m.tokens {
		if tok.Expires.Before(t) {
			delete(m.tokens, k)
		} else {
			live[tok.GrantID] = true
		}
	}
	for id, g := range m.grants {
		if g.Username == "" && !live[id] && g.Created.Before(t.Add(-time.Hour)) {
			delete(m.grants, id)
		}
	}
	return nil
}

func (m *memStore) OptOut(_ context.Context, patientID string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.optouts[patientID]; !ok {
		m.optouts[patientID] = at
	}
	for id, g := range m.grants {
		if g.Patient == patientID || g.FHIRUser == "Patient/"+patientID {
			m.revokeGrant(id)
		}
	}
	return nil
}

func (m *memStore) OptIn(_ context.Context, patientID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.optouts[patientID]; !ok {
		return notFound("opt-out")
	}
	delete(m.optouts, patientID)
	return nil
}

func (m *memStore) OptedOut(_ context.Context, patientIDs []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, p := range patientIDs {
		if _, ok := m.optouts[p]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func (m *memStore) OptOuts(context.Context) ([]OptOutRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []OptOutRecord
	for p, at := range m.optouts {
		out = append(out, OptOutRecord{PatientID: p, Created: at})
	}
	slices.SortFunc(out, func(a, b OptOutRecord) int { return a.Created.Compare(b.Created) })
	return out, nil
}
