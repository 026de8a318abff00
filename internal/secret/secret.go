// Package secret is a secret value that lode.yaml names by where it is
// kept, an environment variable or a file, never by the value itself:
// {env: NAME} or {file: /path}. The daemon's config loader reads every
// named secret once at start (Load) and hands the packages the Value with
// its content; a package reads it with Reveal. Code that has the value
// itself (tests, a miner's subscription secret from Redis) makes one with
// Literal.
//
// A Value prints as "[secret]" (fmt's %v and %+v), so logging a config
// struct that holds one does not show it.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Value is a secret: where lode.yaml says it is kept, and, once loaded,
// its content. At most one of Env and File is set.
type Value struct {
	Env  string `yaml:"env" json:"env,omitempty"`
	File string `yaml:"file" json:"file,omitempty"`

	value string
}

// Literal is a Value holding s, for code that has the secret itself.
func Literal(s string) Value { return Value{value: s} }

// Named reports whether the file names a source (env or file).
func (s Value) Named() bool { return s.Env != "" || s.File != "" }

// IsSet reports whether there is a secret: a named source or a content.
func (s Value) IsSet() bool { return s.Named() || s.value != "" }

// Reveal returns the content ("" before Load for a named source).
func (s Value) Reveal() string { return s.value }

// String hides the content.
func (s Value) String() string {
	switch {
	case s.Env != "":
		return "[secret from env " + s.Env + "]"
	case s.File != "":
		return "[secret from file " + s.File + "]"
	case s.value != "":
		return "[secret]"
	}
	return "[no secret]"
}

// GoString hides the content from %#v too.
func (s Value) GoString() string { return s.String() }

// Check reports a source named twice.
func (s Value) Check() error {
	if s.Env != "" && s.File != "" {
		return fmt.Errorf("set env or file, not both")
	}
	return nil
}

// Resolve reads the secret: the environment variable, or the file with
// its trailing newlines dropped; a Literal's content; "" when nothing is
// set. An unset variable and an empty file are errors.
func (s Value) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	}
	return s.value, nil
}

// Load returns s with its content read (Resolve).
func (s Value) Load() (Value, error) {
	v, err := s.Resolve()
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}
