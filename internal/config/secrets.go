package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/lode-pool/lode/internal/secret"
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
// key. The secrets of the packages' sections (economics.webhook.secret,
// alerts.token_secret, …) are loaded into c itself, each where the file
// names it, so the daemon hands the packages their sections as they are;
// the others are returned.
func (c *Config) ResolveSecrets() (Secrets, error) {
	var s Secrets
	var errs []error
	for _, sf := range c.sectionSecrets() {
		if !sf.v.Named() {
			continue
		}
		loaded, err := sf.v.Load()
		if err != nil {
			errs = append(errs, &Error{Key: sf.key, Problem: err.Error()})
			continue
		}
		*sf.v = loaded
	}
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

var secretType = reflect.TypeOf(secret.Value{})

// sectionSecret is a secret of a package's section and its key path.
type sectionSecret struct {
	key string
	v   *secret.Value
}

// sectionSecrets finds every secret in the packages' sections (the
// top-level fields whose type another package owns), at any depth: a
// package adds a secret to its Config with a secret.Value field and
// nothing here changes.
func (c *Config) sectionSecrets() []sectionSecret {
	var out []sectionSecret
	v := reflect.ValueOf(c).Elem()
	own := v.Type().PkgPath()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Type.Kind() != reflect.Struct || f.Type.PkgPath() == own || key == "" || key == "-" {
			continue
		}
		findSecrets(v.Field(i), key, &out)
	}
	return out
}

func findSecrets(v reflect.Value, path string, out *[]sectionSecret) {
	switch {
	case v.Type() == secretType:
		*out = append(*out, sectionSecret{path, v.Addr().Interface().(*secret.Value)})
	case v.Kind() == reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			p := path
			if name != "" || opts != "inline" {
				if name == "" {
					continue
				}
				p = path + "." + name
			}
			findSecrets(v.Field(i), p, out)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			findSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case v.Kind() == reflect.Pointer && !v.IsNil():
		findSecrets(v.Elem(), path, out)
	}
}
