package settings

import (
	"errors"
	"testing"
)

func TestProblems(t *testing.T) {
	p := Problems{Section: "stratum"}
	if p.Err() != nil {
		t.Fatal("no problems, but an error")
	}
	p.Add("ports[0].listen", "want host:port, got %q", "x")
	p.Add("max_line_bytes", "must be >= %d", 512)
	err := p.Err()
	want := "stratum.ports[0].listen: want host:port, got \"x\"\nstratum.max_line_bytes: must be >= 512"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.ConfigKey() != "ports[0].listen" || e.ConfigProblem() != `want host:port, got "x"` {
		t.Fatalf("first problem %+v", e)
	}
}
