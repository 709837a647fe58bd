package main

import (
	"flag"
	"fmt"
	"time"

	"smartfhir/internal/smart"
)

// authSettings are the authorization server's settings on the serve command.
type authSettings struct {
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	RefuseWildcardScopes bool
	TokenCacheTTL        time.Duration
}

// register adds the flags to fs, with the defaults of smart.Config.
func (f *authSettings) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.AccessTokenLifetime, "access-token-lifetime", time.Hour, "lifetime of access tokens issued to apps (client_credentials tokens live 5 minutes)")
	fs.DurationVar(&f.RefreshTokenLifetime, "refresh-token-lifetime", 90*24*time.Hour, "lifetime of each refresh token (renewed at every refresh)")
	fs.BoolVar(&f.RefuseWildcardScopes, "refuse-wildcard-scopes", false, "refuse scopes for every resource type (patient/*.rs …) with invalid_scope")
	fs.DurationVar(&f.TokenCacheTTL, "token-cache-ttl", 5*time.Second, "how long a checked bearer token is remembered; a revocation made on another replica takes up to this long to apply")
}

// check refuses settings that make no sense.
func (f *authSettings) check() error {
	if f.AccessTokenLifetime < time.Minute || f.AccessTokenLifetime > 24*time.Hour {
		return fmt.Errorf("--access-token-lifetime %v: want between 1m and 24h", f.AccessTokenLifetime)
	}
	if f.RefreshTokenLifetime < f.AccessTokenLifetime {
		return fmt.Errorf("--refresh-token-lifetime %v is shorter than --access-token-lifetime %v", f.RefreshTokenLifetime, f.AccessTokenLifetime)
	}
	if f.TokenCacheTTL < 0 || f.TokenCacheTTL > time.Minute {
		return fmt.Errorf("--token-cache-ttl %v: want between 0 and 1m", f.TokenCacheTTL)
	}
	return nil
}

// apply copies the settings into cfg. A zero cache TTL means no caching,
// which smart.Config spells as the smallest positive duration.
func (f *authSettings) apply(cfg *smart.Config) {
	cfg.AccessTokenLifetime = f.AccessTokenLifetime
	cfg.RefreshTokenLifetime = f.RefreshTokenLifetime
	cfg.RefuseWildcardScopes = f.RefuseWildcardScopes
	cfg.BearerCacheTTL = f.TokenCacheTTL
	if f.TokenCacheTTL == 0 {
		cfg.BearerCacheTTL = time.Nanosecond
	}
}
