package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/smart"
)

// RunAuth runs the conformance suite of the authorization server's store.
// open returns a fresh, migrated, empty store for each subtest and arranges
// for it to be closed.
func RunAuth(t *testing.T, open func(t *testing.T) smart.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s smart.Store)
	}{
		{"ClientsRoundTrip", testAuthClients},
		{"UsersRoundTripAndNamesAreUnique", testAuthUsers},
		{"CodeIsUsedOnce", testAuthCodeOnce},
		{"CodeIsUsedOnceUnderConcurrency", testAuthCodeConcurrent},
		{"RefreshTokenRotatesOnce", testAuthRotate},
		{"RevokeGrantEndsItsTokens", testAuthRevokeGrant},
		{"JTIIsUsedOnceUntilItExpires", testAuthJTI},
		{"SigningKeysRetire", testAuthKeys},
		{"LaunchesSessionsAndLogins", testAuthMisc},
		{"LoginFailuresCountUnderConcurrency", testAuthLoginConcurrent},
		{"LaunchIsTakenOnce", testAuthLaunchOnce},
		{"RevokeClientGrantsEndsTheirTokens", testAuthRevokeClientGrants},
		{"DeleteExpired", testAuthExpired},
		{"OptOutRevokesThePatientsGrants", testAuthOptOut},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func h(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func testAuthClients(t *testing.T, s smart.Store) {
	ctx := context.Background()
	c := &smart.Client{ID: "c1", Name: "App", Type: smart.ConfidentialSymmetric, SecretHash: h("secret"),
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb"}, Scopes: "openid patient/*.rs",
		LaunchURL: "https://app.example/launch", Status: smart.Pending, Created: t0}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); !errors.Is(err, smart.ErrExists) {
		t.Errorf("CreateClient twice: err = %v, want ErrExists", err)
	}
	c2 := &smart.Client{ID: "c2", Name: "Backend", Type: smart.ConfidentialAsymmetric, JWKS: []byte(`{"keys":[]}`), Status: smart.Approved, Created: t0.Add(time.Second)}
	if err := s.CreateClient(ctx, c2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Client(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != c.Name || got.Type != c.Type || !bytes.Equal(got.SecretHash, c.SecretHash) || !slices.Equal(got.RedirectURIs, c.RedirectURIs) ||
		got.Scopes != c.Scopes || got.LaunchURL != c.LaunchURL || got.Status != c.Status || !got.Created.Equal(c.Created) || got.JWKS != nil {
		t.Errorf("Client = %+v, want %+v", got, c)
	}
	if err := s.SetClientStatus(ctx, "c1", smart.Disabled); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, "c1"); got.Status != smart.Disabled {
		t.Errorf("status = %s, want disabled", got.Status)
	}
	if err := s.SetClientStatus(ctx, "nope", smart.Approved); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("SetClientStatus of an unknown client: %v", err)
	}
	if _, err := s.Client(ctx, "nope"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("Client(nope): err = %v, want ErrNotFound", err)
	}
	all, err := s.Clients(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "c1" || string(all[1].JWKS) != `{"keys":[]}` {
		t.Errorf("Clients = %v, %v", all, err)
	}
}

func testAuthUsers(t *testing.T, s smart.Store) {
	ctx := context.Background()
	u := &smart.User{Username: "mom", PasswordHash: "$argon2id$x", Role: smart.RoleRelatedPerson, FHIRUser: "RelatedPerson/1", Patients: []string{"85", "355"}, Created: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, u); !errors.Is(err, smart.ErrExists) {
		t.Errorf("CreateUser twice: %v, want ErrExists", err)
	}
	got, err := s.User(ctx, "mom")
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != u.PasswordHash || got.Role != u.Role || got.FHIRUser != u.FHIRUser || !slices.Equal(got.Patients, u.Patients) {
		t.Errorf("User = %+v, want %+v", got, u)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("User(nobody): %v", err)
	}
	if err := s.CreateUser(ctx, &smart.User{Username: "a", Role: smart.RoleAdmin, Created: t0}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Users(ctx)
	if err != nil || len(all) != 2 || all[0].Username != "a" {
		t.Errorf("Users = %v, %v", all, err)
	}
}

func testAuthCodeOnce(t *testing.T, s smart.Store) {
	ctx := context.Background()
	c := &smart.Code{Hash: h("code"), GrantID: "g", ClientID: "c", RedirectURI: "https://a/cb", CodeChallenge: "ch", Created: t0, Expires: t0.Add(time.Minute)}
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	first, err := s.UseCode(ctx, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if first.Used || first.GrantID != "g" || first.RedirectURI != c.RedirectURI || first.CodeChallenge != "ch" || !first.Expires.Equal(c.Expires) {
		t.Errorf("first UseCode = %+v", first)
	}
	second, err := s.UseCode(ctx, c.Hash)
	if err != nil || !second.Used {
		t.Errorf("second UseCode = %+v, %v; want Used", second, err)
	}
	if _, err := s.UseCode(ctx, h("other")); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("UseCode of an unknown code: %v", err)
	}
}

func testAuthCodeConcurrent(t *testing.T, s smart.Store) {
	ctx := context.Background()
	c := &smart.Code{Hash: h("race"), GrantID: "g", ClientID: "c", Created: t0, Expires: t0.Add(time.Minute)}
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	unused := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got, err := s.UseCode(ctx, c.Hash)
			errs[i] = err
			unused[i] = err == nil && !got.Used
		})
	}
	wg.Wait()
	count := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("UseCode %d: %v", i, errs[i])
		}
		if unused[i] {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d of %d concurrent exchanges saw the code unused, want 1", count, n)
	}
}

func testAuthRotate(t *testing.T, s smart.Store) {
	ctx := context.Background()
	tok := &smart.Token{Hash: h("rt"), Kind: smart.RefreshToken, GrantID: "g", ClientID: "c", Scopes: "offline_access", Issued: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.Token(ctx, tok.Hash)
	if err != nil || got.Kind != smart.RefreshToken || got.Scopes != "offline_access" || !got.Issued.Equal(t0) || got.Rotated || got.Revoked {
		t.Fatalf("Token = %+v, %v", got, err)
	}
	first, err := s.RotateToken(ctx, tok.Hash)
	if err != nil || first.Rotated {
		t.Errorf("first RotateToken = %+v, %v", first, err)
	}
	second, err := s.RotateToken(ctx, tok.Hash)
	if err != nil || !second.Rotated {
		t.Errorf("second RotateToken = %+v, %v; want Rotated", second, err)
	}
	if _, err := s.RotateToken(ctx, h("nope")); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("RotateToken of an unknown token: %v", err)
	}
	if err := s.RevokeToken(ctx, tok.Hash); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Token(ctx, tok.Hash); !got.Revoked {
		t.Errorf("token not revoked")
	}
}

func testAuthRevokeGrant(t *testing.T, s smart.Store) {
	ctx := context.Background()
	g := &smart.Grant{ID: "g1", ClientID: "c", Username: "u", FHIRUser: "Patient/1", Scopes: "launch/patient patient/*.rs", Patient: "1", Encounter: "e", Nonce: "n", Created: t0}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGrant(ctx, &smart.Grant{ID: "g2", ClientID: "c", Created: t0}); err != nil {
		t.Fatal(err)
	}
	for i, gid := range []string{"g1", "g1", "g2"} {
		if err := s.CreateToken(ctx, &smart.Token{Hash: h(fmt.Sprint(i)), Kind: smart.AccessToken, GrantID: gid, ClientID: "c", Issued: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Grant(ctx, "g1")
	if err != nil || *got != *g {
		t.Errorf("Grant = %+v, %v; want %+v", got, err, g)
	}
	if err := s.RevokeGrant(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Grant(ctx, "g1"); !got.Revoked {
		t.Errorf("grant not revoked")
	}
	for i, want := range []bool{true, true, false} {
		tok, err := s.Token(ctx, h(fmt.Sprint(i)))
		if err != nil || tok.Revoked != want {
			t.Errorf("token %d revoked = %v (%v), want %v", i, tok.Revoked, err, want)
		}
	}
	if err := s.RevokeGrant(ctx, "nope"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("RevokeGrant of an unknown grant: %v", err)
	}
}

func testAuthJTI(t *testing.T, s smart.Store) {
	ctx := context.Background()
	// The store compares with its own clock; an expiry long past is expired
	// whatever that clock says, and one far ahead is live.
	past, future := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour)
	if err := s.UseJTI(ctx, "c", "j1", future); err != nil {
		t.Fatal(err)
	}
	if err := s.UseJTI(ctx, "c", "j1", future); !errors.Is(err, smart.ErrExists) {
		t.Errorf("replayed jti: %v, want ErrExists", err)
	}
	if err := s.UseJTI(ctx, "other", "j1", future); err != nil {
		t.Errorf("same jti from another client: %v", err)
	}
	if err := s.UseJTI(ctx, "c", "old", past); err != nil {
		t.Fatal(err)
	}
	if err := s.UseJTI(ctx, "c", "old", future); err != nil {
		t.Errorf("jti whose record expired: %v, want it accepted", err)
	}
}

func testAuthKeys(t *testing.T, s smart.Store) {
	ctx := context.Background()
	if err := s.CreateSigningKey(ctx, &smart.SigningKey{ID: "k1", PrivateKey: []byte{1, 2}, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireSigningKeys(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSigningKey(ctx, &smart.SigningKey{ID: "k2", PrivateKey: []byte{3}, Created: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys(ctx, t0)
	if err != nil || len(keys) != 2 || keys[0].ID != "k2" || !keys[0].Retired.IsZero() || !keys[1].Retired.Equal(t0.Add(time.Hour)) || !bytes.Equal(keys[1].PrivateKey, []byte{1, 2}) {
		t.Errorf("SigningKeys = %+v, %v", keys, err)
	}
	keys, _ = s.SigningKeys(ctx, t0.Add(2*time.Hour))
	if len(keys) != 1 || keys[0].ID != "k2" {
		t.Errorf("SigningKeys after the retired one aged out = %v", keys)
	}
}

func testAuthMisc(t *testing.T, s smart.Store) {
	ctx := context.Background()
	l := &smart.LaunchContext{Hash: h("launch"), ClientID: "c", Username: "doc", Patient: "85", Encounter: "e1", Created: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateLaunch(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.Launch(ctx, l.Hash)
	if err != nil || got.Patient != "85" || got.Encounter != "e1" || got.Username != "doc" || !got.Expires.Equal(l.Expires) {
		t.Errorf("Launch = %+v, %v", got, err)
	}
	if _, err := s.Launch(ctx, h("x")); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("unknown launch: %v", err)
	}

	sess := &smart.Session{Hash: h("sess"), Data: []byte(`{"a":1}`), Expires: t0}
	if err := s.PutSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sess.Data = []byte(`{"a":2}`)
	if err := s.PutSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Session(ctx, sess.Hash); err != nil || string(got.Data) != `{"a":2}` {
		t.Errorf("Session = %+v, %v", got, err)
	}
	if err := s.DeleteSession(ctx, sess.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, sess.Hash); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}

	if _, err := s.LoginState(ctx, "u"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("LoginState of a fresh name: %v", err)
	}
	// Three failures with max 3: the third locks; a failure after the
	// window starts again at 1 and leaves the old lock as it was.
	for i := range 3 {
		got, err := s.RecordLoginFailure(ctx, "u", t0.Add(time.Duration(i)*time.Second), time.Minute, 3, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got.Failures != i+1 {
			t.Errorf("failure %d: count = %d", i+1, got.Failures)
		}
		if locked := !got.LockedUntil.IsZero(); locked != (i == 2) {
			t.Errorf("failure %d: locked until %v", i+1, got.LockedUntil)
		}
	}
	want := smart.LoginState{Key: "u", Failures: 3, LastFailure: t0.Add(2 * time.Second), LockedUntil: t0.Add(2*time.Second + 10*time.Minute)}
	if got, err := s.LoginState(ctx, "u"); err != nil || *got != want {
		t.Errorf("LoginState = %+v, %v; want %+v", got, err, want)
	}
	later := t0.Add(5 * time.Minute)
	if got, err := s.RecordLoginFailure(ctx, "u", later, time.Minute, 3, 10*time.Minute); err != nil || got.Failures != 1 || !got.LockedUntil.Equal(want.LockedUntil) {
		t.Errorf("failure after the window = %+v, %v; want count 1 and the old lock", got, err)
	}
	if err := s.ClearLoginFailures(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginState(ctx, "u"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("LoginState after clearing: %v", err)
	}

	if _, err := s.RecordLoginFailure(ctx, "old", t0, time.Minute, 5, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordLoginFailure(ctx, "locked", t0, time.Minute, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLoginStates(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginState(ctx, "old"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("old failure count kept: %v", err)
	}
	if _, err := s.LoginState(ctx, "locked"); err != nil {
		t.Errorf("failure count of a live lock deleted: %v", err)
	}
}

// testAuthLoginConcurrent checks that concurrent failures all count: a
// read-modify-write would lose some.
func testAuthLoginConcurrent(t *testing.T, s smart.Store) {
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RecordLoginFailure(ctx, "c", t0.Add(time.Duration(i)*time.Millisecond), time.Hour, 10, time.Minute)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LoginState(ctx, "c")
	if err != nil || got.Failures != n || got.LockedUntil.IsZero() {
		t.Errorf("after %d concurrent failures: %+v, %v", n, got, err)
	}
}

func testAuthLaunchOnce(t *testing.T, s smart.Store) {
	ctx := context.Background()
	l := &smart.LaunchContext{Hash: h("once"), ClientID: "c", Username: "doc", Patient: "85", Created: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateLaunch(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeLaunch(ctx, l.Hash)
	if err != nil || got.Patient != "85" || got.ClientID != "c" || !got.Expires.Equal(l.Expires) {
		t.Errorf("TakeLaunch = %+v, %v", got, err)
	}
	if _, err := s.TakeLaunch(ctx, l.Hash); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("second TakeLaunch: %v, want ErrNotFound", err)
	}
}

func testAuthRevokeClientGrants(t *testing.T, s smart.Store) {
	ctx := context.Background()
	for _, g := range []*smart.Grant{{ID: "g1", ClientID: "c1", Created: t0}, {ID: "g2", ClientID: "c1", Created: t0}, {ID: "g3", ClientID: "c2", Created: t0}} {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(ctx, &smart.Token{Hash: h(g.ID), Kind: smart.RefreshToken, GrantID: g.ID, ClientID: g.ClientID, Issued: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeClientGrants(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	checkRevoked(t, s, map[string]bool{"g1": true, "g2": true, "g3": false})
}

// checkRevoked checks which grants (and their one token each, hashed from
// the grant id) are revoked.
func checkRevoked(t *testing.T, s smart.Store, want map[string]bool) {
	t.Helper()
	ctx := context.Background()
	for id, want := range want {
		g, err := s.Grant(ctx, id)
		if err != nil || g.Revoked != want {
			t.Errorf("grant %s = %+v, %v; want revoked %v", id, g, err, want)
		}
		tok, err := s.Token(ctx, h(id))
		if err != nil || tok.Revoked != want {
			t.Errorf("token of %s = %+v, %v; want revoked %v", id, tok, err, want)
		}
	}
}

func testAuthExpired(t *testing.T, s smart.Store) {
	ctx := context.Background()
	for i, exp := range []time.Time{t0.Add(-time.Minute), t0.Add(time.Minute)} {
		if err := s.CreateToken(ctx, &smart.Token{Hash: h(fmt.Sprint("t", i)), Kind: smart.AccessToken, GrantID: "g", ClientID: "c", Issued: t0, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateCode(ctx, &smart.Code{Hash: h(fmt.Sprint("c", i)), GrantID: "g", ClientID: "c", Created: t0, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteExpired(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, h("t0")); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("expired token kept: %v", err)
	}
	if _, err := s.Token(ctx, h("t1")); err != nil {
		t.Errorf("live token deleted: %v", err)
	}
	if _, err := s.UseCode(ctx, h("c0")); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("expired code kept: %v", err)
	}

	// client_credentials grants go once their token has; user grants and
	// recent ones stay.
	old := t0.Add(-2 * time.Hour)
	for _, g := range []*smart.Grant{
		{ID: "cc-done", ClientID: "c", Created: old},
		{ID: "cc-live", ClientID: "c", Created: old},
		{ID: "cc-new", ClientID: "c", Created: t0.Add(-time.Minute)},
		{ID: "user", ClientID: "c", Username: "pat", Created: old},
	} {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for id, exp := range map[string]time.Time{"cc-done": t0.Add(-time.Minute), "cc-live": t0.Add(time.Minute)} {
		if err := s.CreateToken(ctx, &smart.Token{Hash: h(id), Kind: smart.AccessToken, GrantID: id, ClientID: "c", Issued: old, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteExpired(ctx, t0); err != nil {
		t.Fatal(err)
	}
	for id, wantKept := range map[string]bool{"cc-done": false, "cc-live": true, "cc-new": true, "user": true} {
		_, err := s.Grant(ctx, id)
		if kept := err == nil; kept != wantKept {
			t.Errorf("grant %s kept = %v (%v), want %v", id, kept, err, wantKept)
		}
	}
}

func testAuthOptOut(t *testing.T, s smart.Store) {
	ctx := context.Background()
	grants := []*smart.Grant{
		{ID: "launch-p1", ClientID: "c1", Username: "doc", FHIRUser: "Practitioner/d", Patient: "p1", Created: t0},
		{ID: "user-p1", ClientID: "c2", Username: "pat", FHIRUser: "Patient/p1", Created: t0},
		{ID: "launch-p2", ClientID: "c1", Username: "doc", FHIRUser: "Practitioner/d", Patient: "p2", Created: t0},
		{ID: "user-p10", ClientID: "c2", Username: "pat10", FHIRUser: "Patient/p10", Created: t0},
	}
	for _, g := range grants {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateToken(ctx, &smart.Token{Hash: h(g.ID), Kind: smart.AccessToken, GrantID: g.ID, ClientID: g.ClientID, Issued: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.OptOut(ctx, "p1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.OptOut(ctx, "p1", t0.Add(time.Hour)); err != nil {
		t.Fatalf("opting out twice: %v", err)
	}
	checkRevoked(t, s, map[string]bool{"launch-p1": true, "user-p1": true, "launch-p2": false, "user-p10": false})
	if err := s.OptOut(ctx, "p3", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.OptedOut(ctx, []string{"p1", "p2", "p3", "p10"})
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"p1", "p3"}) {
		t.Errorf("OptedOut = %v, %v", got, err)
	}
	// A practitioner's panel can be longer than one statement takes
	// parameters; the opted-out ones sit in different batches.
	many := make([]string, 0, 70002)
	many = append(many, "p1")
	for i := range 70000 {
		many = append(many, fmt.Sprintf("q%d", i))
	}
	many = append(many, "p3")
	got, err = s.OptedOut(ctx, many)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"p1", "p3"}) {
		t.Errorf("OptedOut of %d patients = %v, %v", len(many), got, err)
	}
	if got, err := s.OptedOut(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("OptedOut(nil) = %v, %v", got, err)
	}
	list, err := s.OptOuts(ctx)
	if err != nil || len(list) != 2 || list[0].PatientID != "p1" || !list[0].Created.Equal(t0) || list[1].PatientID != "p3" {
		t.Errorf("OptOuts = %+v, %v", list, err)
	}
	if err := s.OptIn(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.OptIn(ctx, "p1"); !errors.Is(err, smart.ErrNotFound) {
		t.Errorf("OptIn without an opt-out: %v, want ErrNotFound", err)
	}
	if got, err := s.OptedOut(ctx, []string{"p1"}); err != nil || len(got) != 0 {
		t.Errorf("after OptIn: %v, %v", got, err)
	}
	// Opting back in resurrects nothing.
	if g, err := s.Grant(ctx, "launch-p1"); err != nil || !g.Revoked {
		t.Errorf("grant after OptIn: %+v, %v", g, err)
	}
}
