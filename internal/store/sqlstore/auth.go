package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"smartfhir/internal/smart"
)

// AuthStore is the SQL implementation of smart.Store on the auth_* tables
// of migration 0004.
type AuthStore struct{ db *DB }

var _ smart.Store = (*AuthStore)(nil)

// Auth returns the authorization server's store on db.
func (db *DB) Auth() *AuthStore { return &AuthStore{db: db} }

// micro stores an instant; the zero time is 0.
func micro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func unmicro(m int64) time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMicro(m).UTC()
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// blob keeps NOT NULL byte columns non-null.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func notFound(err error, what string) error {
	if errors.Is(err, ErrNoRows) {
		return fmt.Errorf("%s: %w", what, smart.ErrNotFound)
	}
	return err
}

const clientCols = `id, name, type, secret_hash, redirect_uris, scopes, jwks_url, jwks, launch_url, status, created`

// CreateClient stores a new client.
func (a *AuthStore) CreateClient(ctx context.Context, c *smart.Client) (err error) {
	defer wrap(&err, "auth.CreateClient")
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return err
	}
	n, err := a.db.Exec(ctx, `INSERT INTO auth_clients (`+clientCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		c.ID, c.Name, string(c.Type), blob(c.SecretHash), string(uris), c.Scopes, c.JWKSURL, blob(c.JWKS), c.LaunchURL, string(c.Status), micro(c.Created))
	if err == nil && n == 0 {
		return smart.ErrExists
	}
	return err
}

func scanClient(scan func(dest ...any) error) (*smart.Client, error) {
	var c smart.Client
	var typ, uris, status string
	var created int64
	if err := scan(&c.ID, &c.Name, &typ, &c.SecretHash, &uris, &c.Scopes, &c.JWKSURL, &c.JWKS, &c.LaunchURL, &status, &created); err != nil {
		return nil, err
	}
	c.Type, c.Status, c.Created = smart.ClientType(typ), smart.ClientStatus(status), unmicro(created)
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, fmt.Errorf("client %s redirect URIs: %w", c.ID, err)
	}
	if len(c.JWKS) == 0 {
		c.JWKS = nil
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	return &c, nil
}

// Client reads one client.
func (a *AuthStore) Client(ctx context.Context, id string) (*smart.Client, error) {
	c, err := scanClient(func(dest ...any) error {
		return a.db.QueryRow(ctx, `SELECT `+clientCols+` FROM auth_clients WHERE id = ?`, []any{id}, dest...)
	})
	if err != nil {
		return nil, fmt.Errorf("auth.Client(%q): %w", id, notFound(err, "client"))
	}
	return c, nil
}

// Clients lists every client, oldest first.
func (a *AuthStore) Clients(ctx context.Context) (_ []*smart.Client, err error) {
	defer wrap(&err, "auth.Clients")
	rows, err := a.db.Query(ctx, `SELECT `+clientCols+` FROM auth_clients ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*smart.Client
	for rows.Next() {
		c, err := scanClient(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetClientStatus changes a client's status.
func (a *AuthStore) SetClientStatus(ctx context.Context, id string, s smart.ClientStatus) (err error) {
	defer wrap(&err, "auth.SetClientStatus(%q)", id)
	n, err := a.db.Exec(ctx, `UPDATE auth_clients SET status = ? WHERE id = ?`, string(s), id)
	if err == nil && n == 0 {
		return smart.ErrNotFound
	}
	return err
}

// RevokeClientGrants ends every grant of a client and all their tokens.
func (a *AuthStore) RevokeClientGrants(ctx context.Context, clientID string) (err error) {
	defer wrap(&err, "auth.RevokeClientGrants(%q)", clientID)
	return a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE auth_grants SET revoked = 1 WHERE client_id = ? AND revoked = 0`, clientID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE auth_tokens SET revoked = 1 WHERE client_id = ? AND revoked = 0`, clientID)
		return err
	})
}

// CreateUser stores a new user; ErrExists when the name is taken.
func (a *AuthStore) CreateUser(ctx context.Context, u *smart.User) (err error) {
	defer wrap(&err, "auth.CreateUser(%q)", u.Username)
	patients, err := json.Marshal(u.Patients)
	if err != nil {
		return err
	}
	n, err := a.db.Exec(ctx, `INSERT INTO auth_users (username, password_hash, role, fhir_user, patients, created) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (username) DO NOTHING`, u.Username, u.PasswordHash, string(u.Role), u.FHIRUser, string(patients), micro(u.Created))
	if err == nil && n == 0 {
		return smart.ErrExists
	}
	return err
}

const userCols = `username, password_hash, role, fhir_user, patients, created`

func scanUser(scan func(dest ...any) error) (*smart.User, error) {
	var u smart.User
	var role, patients string
	var created int64
	if err := scan(&u.Username, &u.PasswordHash, &role, &u.FHIRUser, &patients, &created); err != nil {
		return nil, err
	}
	u.Role, u.Created = smart.Role(role), unmicro(created)
	if err := json.Unmarshal([]byte(patients), &u.Patients); err != nil {
		return nil, fmt.Errorf("user %s patients: %w", u.Username, err)
	}
	return &u, nil
}

// User reads one user.
func (a *AuthStore) User(ctx context.Context, username string) (*smart.User, error) {
	u, err := scanUser(func(dest ...any) error {
		return a.db.QueryRow(ctx, `SELECT `+userCols+` FROM auth_users WHERE username = ?`, []any{username}, dest...)
	})
	if err != nil {
		return nil, fmt.Errorf("auth.User(%q): %w", username, notFound(err, "user"))
	}
	return u, nil
}

// Users lists every user by name.
func (a *AuthStore) Users(ctx context.Context) (_ []*smart.User, err error) {
	defer wrap(&err, "auth.Users")
	rows, err := a.db.Query(ctx, `SELECT `+userCols+` FROM auth_users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*smart.User
	for rows.Next() {
		u, err := scanUser(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateLaunch stores an EHR launch context.
func (a *AuthStore) CreateLaunch(ctx context.Context, l *smart.LaunchContext) (err error) {
	defer wrap(&err, "auth.CreateLaunch")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_launches (hash, client_id, username, patient, encounter, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.Hash, l.ClientID, l.Username, l.Patient, l.Encounter, micro(l.Created), micro(l.Expires))
	return err
}

// TakeLaunch deletes a launch context and returns it; DELETE … RETURNING
// is the atomic step that makes a launch single-use.
func (a *AuthStore) TakeLaunch(ctx context.Context, hash []byte) (*smart.LaunchContext, error) {
	l := smart.LaunchContext{Hash: hash}
	var created, expires int64
	err := a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.QueryRow(ctx, `DELETE FROM auth_launches WHERE hash = ? RETURNING client_id, username, patient, encounter, created, expires`,
			[]any{hash}, &l.ClientID, &l.Username, &l.Patient, &l.Encounter, &created, &expires)
	})
	if err != nil {
		return nil, fmt.Errorf("auth.TakeLaunch: %w", notFound(err, "launch"))
	}
	l.Created, l.Expires = unmicro(created), unmicro(expires)
	return &l, nil
}

// Launch reads a launch context by the hash of its value.
func (a *AuthStore) Launch(ctx context.Context, hash []byte) (*smart.LaunchContext, error) {
	l := smart.LaunchContext{Hash: hash}
	var created, expires int64
	err := a.db.QueryRow(ctx, `SELECT client_id, username, patient, encounter, created, expires FROM auth_launches WHERE hash = ?`, []any{hash},
		&l.ClientID, &l.Username, &l.Patient, &l.Encounter, &created, &expires)
	if err != nil {
		return nil, fmt.Errorf("auth.Launch: %w", notFound(err, "launch"))
	}
	l.Created, l.Expires = unmicro(created), unmicro(expires)
	return &l, nil
}

// CreateGrant stores a grant.
func (a *AuthStore) CreateGrant(ctx context.Context, g *smart.Grant) (err error) {
	defer wrap(&err, "auth.CreateGrant")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_grants (id, client_id, username, fhir_user, scopes, patient, encounter, nonce, created, revoked)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.ClientID, g.Username, g.FHIRUser, g.Scopes, g.Patient, g.Encounter, g.Nonce, micro(g.Created), flag(g.Revoked))
	return err
}

// Grant reads a grant.
func (a *AuthStore) Grant(ctx context.Context, id string) (*smart.Grant, error) {
	g := smart.Grant{ID: id}
	var created, revoked int64
	err := a.db.QueryRow(ctx, `SELECT client_id, username, fhir_user, scopes, patient, encounter, nonce, created, revoked FROM auth_grants WHERE id = ?`,
		[]any{id}, &g.ClientID, &g.Username, &g.FHIRUser, &g.Scopes, &g.Patient, &g.Encounter, &g.Nonce, &created, &revoked)
	if err != nil {
		return nil, fmt.Errorf("auth.Grant(%q): %w", id, notFound(err, "grant"))
	}
	g.Created, g.Revoked = unmicro(created), revoked != 0
	return &g, nil
}

// RevokeGrant ends a grant and all of its tokens in one unit of work.
func (a *AuthStore) RevokeGrant(ctx context.Context, id string) (err error) {
	defer wrap(&err, "auth.RevokeGrant(%q)", id)
	return a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		n, err := tx.Exec(ctx, `UPDATE auth_grants SET revoked = 1 WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return smart.ErrNotFound
		}
		_, err = tx.Exec(ctx, `UPDATE auth_tokens SET revoked = 1 WHERE grant_id = ?`, id)
		return err
	})
}

// CreateCode stores an authorization code.
func (a *AuthStore) CreateCode(ctx context.Context, c *smart.Code) (err error) {
	defer wrap(&err, "auth.CreateCode")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_codes (hash, grant_id, client_id, redirect_uri, code_challenge, created, expires, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.GrantID, c.ClientID, c.RedirectURI, c.CodeChallenge, micro(c.Created), micro(c.Expires), flag(c.Used))
	return err
}

// UseCode marks a code used and returns it as it was. The conditional
// UPDATE is the atomic step: of two concurrent exchanges, only one changes
// the row.
func (a *AuthStore) UseCode(ctx context.Context, hash []byte) (_ *smart.Code, err error) {
	defer wrap(&err, "auth.UseCode")
	c := smart.Code{Hash: hash}
	err = a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		n, err := tx.Exec(ctx, `UPDATE auth_codes SET used = 1 WHERE hash = ? AND used = 0`, hash)
		if err != nil {
			return err
		}
		var created, expires int64
		err = tx.QueryRow(ctx, `SELECT grant_id, client_id, redirect_uri, code_challenge, created, expires FROM auth_codes WHERE hash = ?`,
			[]any{hash}, &c.GrantID, &c.ClientID, &c.RedirectURI, &c.CodeChallenge, &created, &expires)
		if err != nil {
			return notFound(err, "code")
		}
		c.Created, c.Expires, c.Used = unmicro(created), unmicro(expires), n == 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateToken stores a token.
func (a *AuthStore) CreateToken(ctx context.Context, t *smart.Token) (err error) {
	defer wrap(&err, "auth.CreateToken")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_tokens (hash, kind, grant_id, client_id, scopes, issued, expires, revoked, rotated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, string(t.Kind), t.GrantID, t.ClientID, t.Scopes, micro(t.Issued), micro(t.Expires), flag(t.Revoked), flag(t.Rotated))
	return err
}

const tokenQuery = `SELECT kind, grant_id, client_id, scopes, issued, expires, revoked, rotated FROM auth_tokens WHERE hash = ?`

func scanToken(hash []byte, scan func(dest ...any) error) (*smart.Token, error) {
	t := smart.Token{Hash: hash}
	var kind string
	var issued, expires, revoked, rotated int64
	if err := scan(&kind, &t.GrantID, &t.ClientID, &t.Scopes, &issued, &expires, &revoked, &rotated); err != nil {
		return nil, notFound(err, "token")
	}
	t.Kind, t.Issued, t.Expires, t.Revoked, t.Rotated = smart.TokenKind(kind), unmicro(issued), unmicro(expires), revoked != 0, rotated != 0
	return &t, nil
}

// Token reads a token by hash.
func (a *AuthStore) Token(ctx context.Context, hash []byte) (*smart.Token, error) {
	t, err := scanToken(hash, func(dest ...any) error { return a.db.QueryRow(ctx, tokenQuery, []any{hash}, dest...) })
	if err != nil {
		return nil, fmt.Errorf("auth.Token: %w", err)
	}
	return t, nil
}

// RotateToken marks a refresh token used and returns it as it was, with
// the same conditional UPDATE as UseCode.
func (a *AuthStore) RotateToken(ctx context.Context, hash []byte) (_ *smart.Token, err error) {
	defer wrap(&err, "auth.RotateToken")
	var t *smart.Token
	err = a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		n, err := tx.Exec(ctx, `UPDATE auth_tokens SET rotated = 1 WHERE hash = ? AND rotated = 0`, hash)
		if err != nil {
			return err
		}
		t, err = scanToken(hash, func(dest ...any) error { return tx.QueryRow(ctx, tokenQuery, []any{hash}, dest...) })
		if err != nil {
			return err
		}
		t.Rotated = n == 0
		return nil
	})
	return t, err
}

// RevokeToken ends one token.
func (a *AuthStore) RevokeToken(ctx context.Context, hash []byte) (err error) {
	defer wrap(&err, "auth.RevokeToken")
	n, err := a.db.Exec(ctx, `UPDATE auth_tokens SET revoked = 1 WHERE hash = ?`, hash)
	if err == nil && n == 0 {
		return smart.ErrNotFound
	}
	return err
}

// CreateSigningKey stores a signing key.
func (a *AuthStore) CreateSigningKey(ctx context.Context, k *smart.SigningKey) (err error) {
	defer wrap(&err, "auth.CreateSigningKey")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_signing_keys (id, private_key, created, retired) VALUES (?, ?, ?, ?)`,
		k.ID, k.PrivateKey, micro(k.Created), micro(k.Retired))
	return err
}

// SigningKeys lists the keys in use or retired after since, newest first.
func (a *AuthStore) SigningKeys(ctx context.Context, since time.Time) (_ []*smart.SigningKey, err error) {
	defer wrap(&err, "auth.SigningKeys")
	rows, err := a.db.Query(ctx, `SELECT id, private_key, created, retired FROM auth_signing_keys WHERE retired = 0 OR retired > ? ORDER BY created DESC, id`, micro(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*smart.SigningKey
	for rows.Next() {
		var k smart.SigningKey
		var created, retired int64
		if err := rows.Scan(&k.ID, &k.PrivateKey, &created, &retired); err != nil {
			return nil, err
		}
		k.Created, k.Retired = unmicro(created), unmicro(retired)
		out = append(out, &k)
	}
	return out, rows.Err()
}

// RetireSigningKeys retires every key in use.
func (a *AuthStore) RetireSigningKeys(ctx context.Context, at time.Time) (err error) {
	defer wrap(&err, "auth.RetireSigningKeys")
	_, err = a.db.Exec(ctx, `UPDATE auth_signing_keys SET retired = ? WHERE retired = 0`, micro(at))
	return err
}

// UseJTI records a client assertion id. An entry that has expired may be
// taken again; a live one makes it fail with ErrExists.
func (a *AuthStore) UseJTI(ctx context.Context, clientID, jti string, exp time.Time) (err error) {
	defer wrap(&err, "auth.UseJTI")
	now := a.db.now()
	n, err := a.db.Exec(ctx, `INSERT INTO auth_jtis (client_id, jti, expires) VALUES (?, ?, ?)
ON CONFLICT (client_id, jti) DO UPDATE SET expires = excluded.expires WHERE auth_jtis.expires < ?`, clientID, jti, micro(exp), micro(now))
	if err == nil && n == 0 {
		return smart.ErrExists
	}
	return err
}

// LoginState reads the failed-login count of a key.
func (a *AuthStore) LoginState(ctx context.Context, key string) (*smart.LoginState, error) {
	s := smart.LoginState{Key: key}
	var last, locked int64
	err := a.db.QueryRow(ctx, `SELECT failures, last_failure, locked_until FROM auth_login_attempts WHERE username = ?`, []any{key},
		&s.Failures, &last, &locked)
	if err != nil {
		return nil, fmt.Errorf("auth.LoginState: %w", notFound(err, "login state"))
	}
	s.LastFailure, s.LockedUntil = unmicro(last), unmicro(locked)
	return &s, nil
}

// recordFailure is one upsert, so that concurrent failures each count:
// every SET expression reads the row as it was before this statement, in
// both dialects. The new count is spelled twice for that reason.
const recordFailure = `INSERT INTO auth_login_attempts (username, failures, last_failure, locked_until)
VALUES (?, 1, CAST(? AS BIGINT), CASE WHEN 1 >= CAST(? AS BIGINT) THEN CAST(? AS BIGINT) ELSE 0 END)
ON CONFLICT (username) DO UPDATE SET
	failures = CASE WHEN auth_login_attempts.last_failure < CAST(? AS BIGINT) THEN 1 ELSE auth_login_attempts.failures + 1 END,
	last_failure = excluded.last_failure,
	locked_until = CASE
		WHEN (CASE WHEN auth_login_attempts.last_failure < CAST(? AS BIGINT) THEN 1 ELSE auth_login_attempts.failures + 1 END) >= CAST(? AS BIGINT)
		THEN CAST(? AS BIGINT) ELSE auth_login_attempts.locked_until END
RETURNING failures, last_failure, locked_until`

// RecordLoginFailure counts one failed login of key atomically.
func (a *AuthStore) RecordLoginFailure(ctx context.Context, key string, at time.Time, window time.Duration, max int, lockout time.Duration) (_ *smart.LoginState, err error) {
	defer wrap(&err, "auth.RecordLoginFailure")
	s := smart.LoginState{Key: key}
	now, stale, until, limit := micro(at), micro(at.Add(-window)), micro(at.Add(lockout)), int64(max)
	var last, locked int64
	err = a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		return tx.QueryRow(ctx, recordFailure, []any{key, now, limit, until, stale, stale, limit, until}, &s.Failures, &last, &locked)
	})
	if err != nil {
		return nil, err
	}
	s.LastFailure, s.LockedUntil = unmicro(last), unmicro(locked)
	return &s, nil
}

// ClearLoginFailures forgets the failures of key.
func (a *AuthStore) ClearLoginFailures(ctx context.Context, key string) (err error) {
	defer wrap(&err, "auth.ClearLoginFailures")
	_, err = a.db.Exec(ctx, `DELETE FROM auth_login_attempts WHERE username = ?`, key)
	return err
}

// DeleteLoginStates removes the counts whose last failure and lock ended
// before t.
func (a *AuthStore) DeleteLoginStates(ctx context.Context, before time.Time) (err error) {
	defer wrap(&err, "auth.DeleteLoginStates")
	m := micro(before)
	_, err = a.db.Exec(ctx, `DELETE FROM auth_login_attempts WHERE last_failure < ? AND locked_until < ?`, m, m)
	return err
}

// PutSession writes a browser session.
func (a *AuthStore) PutSession(ctx context.Context, s *smart.Session) (err error) {
	defer wrap(&err, "auth.PutSession")
	_, err = a.db.Exec(ctx, `INSERT INTO auth_sessions (hash, data, expires) VALUES (?, ?, ?)
ON CONFLICT (hash) DO UPDATE SET data = excluded.data, expires = excluded.expires`, s.Hash, blob(s.Data), micro(s.Expires))
	return err
}

// Session reads a browser session.
func (a *AuthStore) Session(ctx context.Context, hash []byte) (*smart.Session, error) {
	s := smart.Session{Hash: hash}
	var expires int64
	if err := a.db.QueryRow(ctx, `SELECT data, expires FROM auth_sessions WHERE hash = ?`, []any{hash}, &s.Data, &expires); err != nil {
		return nil, fmt.Errorf("auth.Session: %w", notFound(err, "session"))
	}
	s.Expires = unmicro(expires)
	return &s, nil
}

// DeleteSession removes a browser session.
func (a *AuthStore) DeleteSession(ctx context.Context, hash []byte) (err error) {
	defer wrap(&err, "auth.DeleteSession")
	_, err = a.db.Exec(ctx, `DELETE FROM auth_sessions WHERE hash = ?`, hash)
	return err
}

// DeleteExpired removes what expired before t. A user's grants stay: they
// are the record of what a user allowed. A client_credentials grant is
// only the envelope of one token, so it goes once its token has gone; the
// hour's margin keeps a grant whose token is being written in another
// transaction.
func (a *AuthStore) DeleteExpired(ctx context.Context, t time.Time) (err error) {
	defer wrap(&err, "auth.DeleteExpired")
	m := micro(t)
	return a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		for _, table := range []string{"auth_codes", "auth_tokens", "auth_launches", "auth_sessions", "auth_jtis"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE expires < ?`, m); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM auth_grants WHERE username = '' AND created < ?
AND NOT EXISTS (SELECT 1 FROM auth_tokens WHERE auth_tokens.grant_id = auth_grants.id)`, micro(t.Add(-time.Hour)))
		return err
	})
}

// OptOut records a patient's opt-out and revokes the grants (and their
// tokens) of the patient as launch patient or as user, in one unit of
// work.
func (a *AuthStore) OptOut(ctx context.Context, patientID string, at time.Time) (err error) {
	defer wrap(&err, "auth.OptOut")
	return a.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO auth_optouts (patient_id, created) VALUES (?, ?) ON CONFLICT (patient_id) DO NOTHING`, patientID, micro(at)); err != nil {
			return err
		}
		const grants = `SELECT id FROM auth_grants WHERE patient = ? OR fhir_user = ?`
		if _, err := tx.Exec(ctx, `UPDATE auth_tokens SET revoked = 1 WHERE revoked = 0 AND grant_id IN (`+grants+`)`, patientID, "Patient/"+patientID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE auth_grants SET revoked = 1 WHERE revoked = 0 AND (patient = ? OR fhir_user = ?)`, patientID, "Patient/"+patientID)
		return err
	})
}

// OptIn forgets a patient's opt-out.
func (a *AuthStore) OptIn(ctx context.Context, patientID string) (err error) {
	defer wrap(&err, "auth.OptIn")
	n, err := a.db.Exec(ctx, `DELETE FROM auth_optouts WHERE patient_id = ?`, patientID)
	if err == nil && n == 0 {
		return fmt.Errorf("opt-out of Patient/%s: %w", patientID, smart.ErrNotFound)
	}
	return err
}

// optedOutBatch bounds the parameters of one opt-out query (SQLite allows
// 32,766, PostgreSQL 65,535; a practitioner's panel may be larger).
const optedOutBatch = 500

// OptedOut returns those of patientIDs who opted out.
func (a *AuthStore) OptedOut(ctx context.Context, patientIDs []string) (_ []string, err error) {
	defer wrap(&err, "auth.OptedOut")
	var out []string
	for batch := range slices.Chunk(patientIDs, optedOutBatch) {
		if out, err = a.optedOut(ctx, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// optedOut appends to out those of patientIDs (at most optedOutBatch) who
// opted out.
func (a *AuthStore) optedOut(ctx context.Context, patientIDs, out []string) ([]string, error) {
	args := make([]any, len(patientIDs))
	for i, p := range patientIDs {
		args[i] = p
	}
	rows, err := a.db.Query(ctx, `SELECT patient_id FROM auth_optouts WHERE patient_id IN (`+
		placeholders(len(args))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// OptOuts lists every opt-out, oldest first.
func (a *AuthStore) OptOuts(ctx context.Context) (_ []smart.OptOutRecord, err error) {
	defer wrap(&err, "auth.OptOuts")
	rows, err := a.db.Query(ctx, `SELECT patient_id, created FROM auth_optouts ORDER BY created, patient_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []smart.OptOutRecord
	for rows.Next() {
		var o smart.OptOutRecord
		var created int64
		if err := rows.Scan(&o.PatientID, &created); err != nil {
			return nil, err
		}
		o.Created = unmicro(created)
		out = append(out, o)
	}
	return out, rows.Err()
}
