package testenv

import (
	"errors"
	"testing"
)

// ConfigKeys returns the keys named by the problems of a package's
// ValidateSettings, in order: each joined error must have a ConfigKey
// method (the packages' *ConfigError), which the config file's loader uses
// to report it under its key path.
func ConfigKeys(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var keys []string
	for _, e := range list {
		var k interface{ ConfigKey() string }
		if !errors.As(e, &k) {
			t.Fatalf("a problem without a key: %v", e)
		}
		keys = append(keys, k.ConfigKey())
	}
	return keys
}
