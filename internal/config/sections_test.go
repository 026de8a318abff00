package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// A package's section of lode.yaml is the package's own Config: every
// field with a yaml key is a key of the file, decoded straight into the
// struct the daemon hands the package. The test walks the sections'
// types, so a setting added to a package's Config (a field with a yaml
// key) is covered without an edit here: for every scalar key it writes a
// value other than the default and reads it back from the field, and the
// file's loader must not call the key unknown or of the wrong kind. What a
// new setting still needs besides its field, default and check: a line in
// lode.example.yaml (TestExampleConfigIsDefaults) and its docs.
func TestPackageSectionsAreTheDecodeTarget(t *testing.T) {
	top := reflect.TypeOf(Config{})
	own := top.PkgPath()
	var sections []string
	for i := range top.NumField() {
		f := top.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Type.Kind() != reflect.Struct || f.Type.PkgPath() == own || key == "" {
			continue
		}
		sections = append(sections, key)
		for _, leaf := range scalarLeaves(f.Type, []string{key}, []int{i}) {
			t.Run(strings.Join(leaf.path, "."), func(t *testing.T) {
				def := reflect.ValueOf(Defaults()).FieldByIndex(leaf.index)
				val, written := otherValue(t, def)
				doc := any(written)
				for i := len(leaf.path) - 1; i >= 0; i-- {
					doc = map[string]any{leaf.path[i]: doc}
				}
				text, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				// Validation may refuse the value; the key check must not.
				var node yaml.Node
				if err := yaml.Unmarshal(text, &node); err != nil {
					t.Fatal(err)
				}
				var errs []error
				checkNode(node.Content[0], top, "", &errs)
				if len(errs) > 0 {
					t.Fatalf("file %q: %v", text, errs)
				}
				cfg, _ := Parse(strings.NewReader("roles: [api]\n" + string(text)))
				got := reflect.ValueOf(cfg).FieldByIndex(leaf.index)
				if !reflect.DeepEqual(got.Interface(), val.Interface()) {
					t.Fatalf("file %q decoded to %v, want %v", text, got.Interface(), val.Interface())
				}
			})
		}
	}
	for _, want := range []string{"stratum", "ledger", "unlocker", "economics", "alerts"} {
		if !strings.Contains(" "+strings.Join(sections, " ")+" ", " "+want+" ") {
			t.Errorf("section %s is not a package's own Config (sections: %v)", want, sections)
		}
	}
}

// leaf is one scalar key of a section: its path in the file and the field
// index path from Config.
type leaf struct {
	path  []string
	index []int
}

// scalarLeaves lists the keys of a section that hold one value (lists are
// left out: a list is written whole).
func scalarLeaves(t reflect.Type, path []string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		idx := append(append([]int(nil), index...), i)
		if name == "" && opts == "inline" {
			out = append(out, scalarLeaves(f.Type, path, idx)...)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := append(append([]string(nil), path...), name)
		switch {
		case f.Type == durationType:
			out = append(out, leaf{p, idx})
		case f.Type.Kind() == reflect.Struct:
			out = append(out, scalarLeaves(f.Type, p, idx)...)
		case f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Map:
		default:
			out = append(out, leaf{p, idx})
		}
	}
	return out
}

// otherValue returns a value of def's type other than def, and how the file
// writes it.
func otherValue(t *testing.T, def reflect.Value) (reflect.Value, any) {
	t.Helper()
	v := reflect.New(def.Type()).Elem()
	switch {
	case def.Type() == durationType:
		d := time.Duration(def.Int()) + 1500*time.Millisecond
		v.SetInt(int64(d))
		return v, d.String()
	case def.Kind() == reflect.Pointer && def.Type().Elem().Kind() == reflect.Bool:
		b := def.IsNil() || !def.Elem().Bool()
		v.Set(reflect.ValueOf(&b))
		return v, b
	}
	switch def.Kind() {
	case reflect.Bool:
		v.SetBool(!def.Bool())
		return v, v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(def.Int() + 1)
		return v, v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(def.Uint() + 1)
		return v, v.Uint()
	case reflect.Float32, reflect.Float64:
		v.SetFloat(def.Float() + 0.25)
		return v, v.Float()
	case reflect.String:
		v.SetString(def.String() + "0")
		return v, v.String()
	}
	t.Fatalf("no test value for a %s", def.Type())
	return v, nil
}

func TestYAMLFieldsInline(t *testing.T) {
	type inner struct {
		A int `yaml:"a"`
		B int `yaml:"-"`
	}
	type outer struct {
		In  inner `yaml:",inline"`
		C   int   `yaml:"c"`
		Not int
	}
	var got []string
	for _, f := range yamlFields(reflect.TypeOf(outer{})) {
		got = append(got, f.name)
	}
	if fmt.Sprint(got) != "[a c]" {
		t.Fatalf("keys %v", got)
	}
}
