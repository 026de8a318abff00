package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates a config file. The Config is returned
// even when err is not nil (defaults where the file could not be used), so
// a caller can go on to report the secrets' problems in the same run.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	// The caller names the file; each line of err names a key.
	return Parse(f)
}

// Parse decodes YAML over Defaults and validates the result. Every problem
// is reported at once (errors.Join of *Error, each with its key path):
// unknown keys, values of the wrong kind, then Validate's checks.
func Parse(r io.Reader) (Config, error) {
	cfg := Defaults()
	data, err := io.ReadAll(r)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	data, err = expandEnv(data)
	if err != nil {
		return cfg, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// A syntax error: nothing after it can be trusted.
		return cfg, fmt.Errorf("parse config: %s", plainYAMLError(err))
	}
	var errs []error
	if len(doc.Content) > 0 {
		checkNode(doc.Content[0], reflect.TypeOf(cfg), "", &errs)
		// Values checkNode refused keep their defaults; the rest is
		// decoded. Its own errors are the ones already reported.
		if derr := doc.Content[0].Decode(&cfg); derr != nil && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("parse config: %s", plainYAMLError(derr)))
		}
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

// checkNode compares a YAML node with the Go type it decodes into and
// reports, by key path, unknown keys and values of the wrong kind, without
// Go type names.
func checkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	keyName := path
	if keyName == "" {
		keyName = "(top level)"
	}
	bad := func(format string, args ...any) {
		*errs = append(*errs, &Error{Key: keyName, Problem: fmt.Sprintf(format, args...)})
	}
	if t == secretType && n.Kind != yaml.MappingNode {
		// Not describe(n): the value may be the secret itself.
		bad("a secret is not written in the file: give {env: NAME} (an environment variable) or {file: /path}")
		return
	}
	if t == durationType {
		var d time.Duration
		if n.Kind != yaml.ScalarNode || n.Decode(&d) != nil {
			bad("want a duration such as 500ms, 30s, 1m30s or 24h, got %s", describe(n))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			bad("want a section of keys (key: value), got %s", describe(n))
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for _, f := range yamlFields(t) {
			fields[f.name] = f.typ
			names = append(names, f.name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				problem := "unknown key"
				if s := suggest(k.Value, names); s != "" {
					problem += fmt.Sprintf(" (did you mean `%s`?)", s)
				} else if elsewhere := keyPaths(reflect.TypeOf(Config{}), "", k.Value); len(elsewhere) > 0 {
					problem += fmt.Sprintf(" here (did you mean `%s`?)", strings.Join(elsewhere, "` or `"))
				} else {
					where := "at the top level"
					if path != "" {
						where = "in " + path
					}
					problem += fmt.Sprintf(" (keys %s: %s)", where, strings.Join(names, ", "))
				}
				*errs = append(*errs, &Error{Key: child, Problem: problem})
				continue
			}
			checkNode(v, ft, child, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			bad("want a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Pointer:
		checkNode(n, t.Elem(), path, errs)
	default:
		if n.Kind != yaml.ScalarNode {
			bad("want %s, got %s", kindName(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			bad("want %s, got %s", kindName(t), describe(n))
		}
	}
}

// keyPaths returns the paths of every key named name in the config, for a
// key written in the wrong section ("fee_percent" at the top level is
// pool.fee_percent).
func keyPaths(t reflect.Type, prefix, name string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
		if prefix != "" && !strings.HasSuffix(prefix, "[]") {
			prefix += "[]"
		}
	}
	if t.Kind() != reflect.Struct || t == durationType {
		return nil
	}
	var out []string
	for _, f := range yamlFields(t) {
		path := f.name
		if prefix != "" {
			path = prefix + "." + f.name
		}
		if f.name == name {
			out = append(out, path)
		}
		out = append(out, keyPaths(f.typ, path, name)...)
	}
	return out
}

// yamlField is one key of a section: its name and the Go type it decodes
// into.
type yamlField struct {
	name string
	typ  reflect.Type
}

// yamlFields lists the keys of a struct in field order, with the keys of
// its inline structs (yaml:",inline") in their place: a package's Config
// may group settings in a struct of their own that the file writes flat.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			out = append(out, yamlFields(f.Type)...)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, yamlField{name, f.Type})
	}
	return out
}

// kindName says what a Go type holds, in the file's terms.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number ≥ 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Map:
		return "a section of keys"
	}
	return "a value"
}

// describe shows what the file holds at a node.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// suggest returns the known key nearest to an unknown one when it is close
// enough to be a typo (edit distance at most a third of its length, at
// least 1 and at most 3), or "".
func suggest(unknown string, known []string) string {
	best, bestD := "", 0
	limit := min(max(len(unknown)/3, 1), 3)
	for _, k := range known {
		d := editDistance(strings.ToLower(unknown), k)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (optimal string
// alignment: insertions, deletions, substitutions, adjacent swaps).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// goTypeName matches the Go type names yaml's messages carry.
var goTypeName = regexp.MustCompile(`(into|in type) [\w.*\[\]]+`)

// plainYAMLError is a yaml error without its "yaml: " prefix and Go types.
func plainYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return goTypeName.ReplaceAllString(msg, "")
}

// expandEnv replaces ${NAME} with the environment variable NAME, so one file
// can serve several hosts (lode.regtest.yaml uses it for ports chosen at
// start). An unset variable is an error naming it. YAML comments are left
// alone, so a comment may mention ${NAME}. Secrets should still come
// through the env:/file: keys, which never place the value in the text.
func expandEnv(data []byte) ([]byte, error) {
	var missing []string
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		code, comment := splitComment(line)
		for {
			i := strings.Index(code, "${")
			if i < 0 {
				break
			}
			j := strings.IndexByte(code[i:], '}')
			if j < 0 {
				break
			}
			name := code[i+2 : i+j]
			v, ok := os.LookupEnv(name)
			if !ok && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			b.WriteString(code[:i])
			b.WriteString(v)
			code = code[i+j+1:]
		}
		b.WriteString(code)
		b.WriteString(comment)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("config uses unset environment variables: %s", strings.Join(missing, ", "))
	}
	return []byte(b.String()), nil
}

// splitComment splits a YAML line before its comment: a '#' at the start or
// after a blank, outside quotes.
func splitComment(line string) (code, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, ""
}
