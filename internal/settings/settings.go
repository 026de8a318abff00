// Package settings is the error the packages' own config sections report:
// one bad setting, named by its key, so that internal/config can list every
// problem of a lode.yaml at once under its full key path.
package settings

import (
	"errors"
	"fmt"
)

// Error is a bad setting of section (e.g. "stratum"), named by its key in
// that section (e.g. "ports[0].listen").
type Error struct {
	Section string
	Key     string
	Problem string
}

func (e *Error) Error() string { return e.Section + "." + e.Key + ": " + e.Problem }

// ConfigKey and ConfigProblem let the config file's loader report the error
// under its full key path.
func (e *Error) ConfigKey() string     { return e.Key }
func (e *Error) ConfigProblem() string { return e.Problem }

// Problems collects the bad settings of one section.
type Problems struct {
	Section string
	errs    []error
}

// Add records a problem with key.
func (p *Problems) Add(key, format string, args ...any) {
	p.errs = append(p.errs, &Error{Section: p.Section, Key: key, Problem: fmt.Sprintf(format, args...)})
}

// Err returns every problem added (errors.Join; nil when none).
func (p *Problems) Err() error { return errors.Join(p.errs...) }
