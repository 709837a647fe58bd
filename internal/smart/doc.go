// Package smart is the SMART on FHIR authorization server: SMART App Launch
// 2.2 (EHR and standalone launch, PKCE, v1 and v2 scopes, refresh tokens,
// OpenID Connect with fhirUser), SMART Backend Services (client_credentials
// with private_key_jwt), token introspection (RFC 7662) and revocation
// (RFC 7009), and the discovery documents and JWKS that describe it.
//
// It keeps its state behind the [Store] interface it declares; cmd/smartfhir
// hands it the SQL implementation. Tokens are opaque random strings and
// only their SHA-256 hashes are stored (DESIGN.md §6); every token belongs
// to a [Grant], so revoking a grant or disabling its client ends all of its
// tokens at once.
package smart
