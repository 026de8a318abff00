package config

import (
	"errors"
	"os"
	"strings"
)

// Secrets are the values resolved from the env vars and files the config
// names. They are passed to the components and never logged.
type Secrets struct {
	NodeUser, NodePassword string
	RedisPassword          string
	RedisSentinelPassword  string
	PayoutKey              string
	AdminToken             string
}

// ResolveSecrets reads every secret the config names that the configured
// roles use, and the cookie file. Every problem is reported, each with its
// key.
func (c Config) ResolveSecrets() (Secrets, error) {
	var s Secrets
	var errs []error
	get := func(key string, sec Secret, dst *string) {
		v, err := sec.Resolve()
		if err != nil {
			errs = append(errs, &Error{Key: key, Problem: err.Error()})
		}
		*dst = v
	}
	get("node.rpc_password", c.Node.RPCPassword, &s.NodePassword)
	s.NodeUser = c.Node.RPCUser
	get("redis.password", c.Redis.Password, &s.RedisPassword)
	get("redis.sentinel_password", c.Redis.SentinelPassword, &s.RedisSentinelPassword)
	if c.Has(RolePayouts) && c.Payouts.Signing == "hot" {
		get("payouts.key", c.Payouts.Key, &s.PayoutKey)
	}
	get("api.admin_token", c.API.AdminToken, &s.AdminToken)
	if c.Node.RPCCookieFile != "" && (c.Has(RoleStratum) || c.Has(RoleUnlocker) || c.Has(RolePayouts)) {
		user, pass, err := c.ReadCookie()
		if err != nil {
			errs = append(errs, err)
		} else {
			s.NodeUser, s.NodePassword = user, pass
		}
	}
	return s, errors.Join(errs...)
}

// ReadCookie reads node.rpc_cookie_file (user:password).
func (c Config) ReadCookie() (user, pass string, err error) {
	b, err := os.ReadFile(c.Node.RPCCookieFile)
	if err != nil {
		return "", "", &Error{Key: "node.rpc_cookie_file", Problem: err.Error()}
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user == "" || pass == "" {
		return "", "", &Error{Key: "node.rpc_cookie_file", Problem: "want user:password"}
	}
	return user, pass, nil
}
