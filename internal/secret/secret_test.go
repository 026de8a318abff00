package secret

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	if err := os.WriteFile(file, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_SECRET", "from-env")
	for _, tc := range []struct {
		name string
		v    Value
		want string
		err  string
	}{
		{"env", Value{Env: "LODE_TEST_SECRET"}, "from-env", ""},
		{"file, newline dropped", Value{File: file}, "from-file", ""},
		{"literal", Literal("lit"), "lit", ""},
		{"none", Value{}, "", ""},
		{"unset env", Value{Env: "LODE_TEST_SURELY_UNSET"}, "", "environment variable LODE_TEST_SURELY_UNSET is not set"},
		{"missing file", Value{File: filepath.Join(dir, "nope")}, "", "read secret file"},
		{"empty file", Value{File: empty}, "", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loaded, err := tc.v.Load()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || loaded.Reveal() != tc.want {
				t.Fatalf("%q, %v; want %q", loaded.Reveal(), err, tc.want)
			}
		})
	}
}

// Printing a Value, alone or in a struct, never shows its content.
func TestPrintingHides(t *testing.T) {
	s := struct{ A, B Value }{Literal("hunter2"), Value{File: "/etc/k"}}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", Literal("hunter2"))} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("printed %s", out)
		}
	}
	if (Value{Env: "A", File: "/b"}).Check() == nil {
		t.Fatal("env and file both accepted")
	}
}
