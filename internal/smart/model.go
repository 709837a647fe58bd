package smart

import (
	"context"
	"errors"
	"time"
)

// ClientType is how a client authenticates (SMART App Launch 2.2
// §"Client types").
type ClientType string

// The client types.
const (
	Public                 ClientType = "public"
	ConfidentialSymmetric  ClientType = "confidential-symmetric"
	ConfidentialAsymmetric ClientType = "confidential-asymmetric"
)

// ClientStatus is where a client is in its review.
type ClientStatus string

// The client statuses. Only approved clients get codes or tokens.
const (
	Pending  ClientStatus = "pending"
	Approved ClientStatus = "approved"
	Denied   ClientStatus = "denied"
	Disabled ClientStatus = "disabled"
)

// Client is a registered app.
type Client struct {
	ID   string
	Name string
	Type ClientType
	// SecretHash is the SHA-256 of the client secret of a symmetric client.
	// Secrets are 256-bit random values the server made, so a fast hash is
	// as strong as a slow one (nothing to guess).
	SecretHash   []byte
	RedirectURIs []string
	// Scopes is the space-separated set the client may be granted.
	Scopes    string
	JWKSURL   string
	JWKS      []byte
	LaunchURL string
	Status    ClientStatus
	Created   time.Time
}

// Role is what kind of person a user is.
type Role string

// The roles.
const (
	RolePatient       Role = "patient"
	RolePractitioner  Role = "practitioner"
	RoleRelatedPerson Role = "related-person"
	RoleAdmin         Role = "admin"
)

// User is a person who logs in.
type User struct {
	Username string
	// PasswordHash is an argon2id hash in the PHC string format.
	PasswordHash string
	Role         Role
	// FHIRUser is a relative reference such as "Patient/85".
	FHIRUser string
	// Patients are the Patient ids a related person acts for, or a
	// practitioner's assigned panel.
	Patients []string
	Created  time.Time
}

// LaunchContext is an EHR launch prepared for one user of one client.
type LaunchContext struct {
	// Hash is the SHA-256 of the opaque launch value.
	Hash      []byte
	ClientID  string
	Username  string
	Patient   string
	Encounter string
	Created   time.Time
	Expires   time.Time
}

// Grant records what a user (or, for client_credentials, the client
// itself) was allowed: scopes and launch context (DESIGN.md §6).
type Grant struct {
	ID       string
	ClientID string
	// Username is empty for a client_credentials grant.
	Username  string
	FHIRUser  string
	Scopes    string
	Patient   string
	Encounter string
	Nonce     string
	Created   time.Time
	Revoked   bool
}

// Code is an authorization code (RFC 6749 §4.1.2).
type Code struct {
	Hash          []byte
	GrantID       string
	ClientID      string
	RedirectURI   string
	CodeChallenge string
	Created       time.Time
	Expires       time.Time
	// Used is set when the code has been exchanged once.
	Used bool
}

// TokenKind tells access from refresh tokens.
type TokenKind string

// The token kinds.
const (
	AccessToken  TokenKind = "access"
	RefreshToken TokenKind = "refresh"
)

// Token is an access or refresh token, known by the SHA-256 of its value.
type Token struct {
	Hash     []byte
	Kind     TokenKind
	GrantID  string
	ClientID string
	// Scopes is what this token carries: the grant's scopes or, after a
	// narrowing refresh, fewer.
	Scopes  string
	Issued  time.Time
	Expires time.Time
	Revoked bool
	// Rotated is set on a refresh token once it has been used: a second use
	// is a replay (OAuth 2.0 Security BCP §4.14.2).
	Rotated bool
}

// SigningKey is an RSA key that signs id_tokens.
type SigningKey struct {
	ID string
	// PrivateKey is the PKCS #8 DER encoding.
	PrivateKey []byte
	Created    time.Time
	// Retired is when a newer key replaced it; zero while it signs.
	Retired time.Time
}

// LoginState counts the recent failed logins of a key: a user name or a
// source address.
type LoginState struct {
	// Key is "user:" + a user name or "addr:" + a source address.
	Key         string
	Failures    int
	LastFailure time.Time
	LockedUntil time.Time
}

// Session is a browser's state during an authorization: the pending
// request, who logged in, and the CSRF token its forms carry.
type Session struct {
	// Hash is the SHA-256 of the session cookie value.
	Hash    []byte
	Data    []byte
	Expires time.Time
}

// ErrNotFound is what Store methods return when the row they look for is
// not there.
var ErrNotFound = errors.New("not found")

// ErrExists is what Store methods return when a unique key is taken.
var ErrExists = errors.New("already exists")

// Store keeps the authorization server's state. Lookups that find nothing
// return an error wrapping ErrNotFound. Implementations must be safe for
// concurrent use by several server replicas sharing one database.
type Store interface {
	CreateClient(ctx context.Context, c *Client) error
	Client(ctx context.Context, id string) (*Client, error)
	Clients(ctx context.Context) ([]*Client, error)
	SetClientStatus(ctx context.Context, id string, s ClientStatus) error
	// RevokeClientGrants ends every grant of the client and every token of
	// those grants, in one unit of work.
	RevokeClientGrants(ctx context.Context, clientID string) error

	// CreateUser fails with ErrExists when the user name is taken.
	CreateUser(ctx context.Context, u *User) error
	User(ctx context.Context, username string) (*User, error)
	Users(ctx context.Context) ([]*User, error)

	CreateLaunch(ctx context.Context, l *LaunchContext) error
	Launch(ctx context.Context, hash []byte) (*LaunchContext, error)
	// TakeLaunch removes a launch context and returns it, atomically: of
	// two concurrent takes of one launch, one gets ErrNotFound.
	TakeLaunch(ctx context.Context, hash []byte) (*LaunchContext, error)

	CreateGrant(ctx context.Context, g *Grant) error
	Grant(ctx context.Context, id string) (*Grant, error)
	// RevokeGrant ends the grant and every token of it.
	RevokeGrant(ctx context.Context, id string) error

	CreateCode(ctx context.Context, c *Code) error
	// UseCode marks the code used and returns it as it was before: a code
	// with Used set was already exchanged. It is atomic, so two concurrent
	// exchanges of one code see one unused code between them.
	UseCode(ctx context.Context, hash []byte) (*Code, error)

	CreateToken(ctx context.Context, t *Token) error
	Token(ctx context.Context, hash []byte) (*Token, error)
	// RotateToken marks a refresh token used and returns it as it was
	// before, atomically like UseCode.
	RotateToken(ctx context.Context, hash []byte) (*Token, error)
	RevokeToken(ctx context.Context, hash []byte) error

	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// SigningKeys lists keys retired after since, or not retired, newest
	// first.
	SigningKeys(ctx context.Context, since time.Time) ([]*SigningKey, error)
	// RetireSigningKeys marks every key not yet retired as retired at t.
	RetireSigningKeys(ctx context.Context, at time.Time) error

	// UseJTI records a client assertion's jti until exp; it fails with
	// ErrExists when the client already used it (RFC 7523 §3).
	UseJTI(ctx context.Context, clientID, jti string, exp time.Time) error

	// LoginState reads the failed-login count of a key (a user name or a
	// source address, as the server spells them).
	LoginState(ctx context.Context, key string) (*LoginState, error)
	// RecordLoginFailure counts one failed login of key at time at, in one
	// atomic step, and returns the state after it: the count restarts at 1
	// when the previous failure is older than window, and when it reaches
	// max the key is locked until at+lockout.
	RecordLoginFailure(ctx context.Context, key string, at time.Time, window time.Duration, max int, lockout time.Duration) (*LoginState, error)
	// ClearLoginFailures forgets the failures of key.
	ClearLoginFailures(ctx context.Context, key string) error
	// DeleteLoginStates removes the failure counts whose last failure and
	// lock both ended before t.
	DeleteLoginStates(ctx context.Context, before time.Time) error

	PutSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, hash []byte) (*Session, error)
	DeleteSession(ctx context.Context, hash []byte) error

	// OptOut records that a patient opted out of third-party access at
	// at, and revokes, in the same unit of work, every grant whose launch
	// patient is the patient or whose user is the patient (fhirUser
	// Patient/{id}), with their tokens. Opting out again changes nothing.
	OptOut(ctx context.Context, patientID string, at time.Time) error
	// OptIn forgets a patient's opt-out; ErrNotFound when there is none.
	OptIn(ctx context.Context, patientID string) error
	// OptedOut returns those of patientIDs who opted out.
	OptedOut(ctx context.Context, patientIDs []string) ([]string, error)
	// OptOuts lists every opt-out, oldest first.
	OptOuts(ctx context.Context) ([]OptOutRecord, error)

	// DeleteExpired removes codes, tokens, launches, sessions and jtis that
	// expired before t, and the client_credentials grants (no user) created
	// over an hour before t that no longer have a token.
	DeleteExpired(ctx context.Context, t time.Time) error
}

// OptOutRecord is a patient's opt-out of third-party access.
type OptOutRecord struct {
	PatientID string
	Created   time.Time
}
