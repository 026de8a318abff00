package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/config"
)

// TestApplyRuntime: the runtime section sets the collector's target, the
// memory limit and GOMAXPROCS, a reload can remove the limit and the procs
// again, and GOGC / GOMEMLIMIT / GOMAXPROCS in the environment win.
func TestApplyRuntime(t *testing.T) {
	gc0 := debug.SetGCPercent(100)
	lim0 := debug.SetMemoryLimit(-1)
	procs0 := runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(gc0)
		debug.SetMemoryLimit(lim0)
		runtime.GOMAXPROCS(procs0)
	})
	noEnv := func(string) string { return "" }
	log := zap.NewNop()

	applyRuntime(config.RuntimeConfig{GCPercent: 25, MemoryLimitBytes: 1 << 30, MaxProcs: 1}, noEnv, log)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS %d, want 1", got)
	}
	if got := debug.SetGCPercent(-1); got != 25 {
		t.Errorf("gc percent %d, want 25", got)
	}
	debug.SetGCPercent(25)
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want %d", got, 1<<30)
	}

	// A reload without the limit removes it.
	applyRuntime(config.RuntimeConfig{GCPercent: 50}, noEnv, log)
	if got := debug.SetGCPercent(-1); got != 50 {
		t.Errorf("after reload: gc percent %d, want 50", got)
	}
	debug.SetGCPercent(50)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after reload: memory limit %d, want none", got)
	}
	runtime.SetDefaultGOMAXPROCS()
	all := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(1)
	applyRuntime(config.RuntimeConfig{GCPercent: 50}, noEnv, log)
	if got := runtime.GOMAXPROCS(0); got != all {
		t.Errorf("after reload without max_procs: GOMAXPROCS %d, want the default %d", got, all)
	}

	// The environment wins.
	env := func(k string) string {
		return map[string]string{"GOGC": "200", "GOMEMLIMIT": "3GiB", "GOMAXPROCS": "3"}[k]
	}
	debug.SetMemoryLimit(2 << 30) // as the runtime would have set it from GOMEMLIMIT
	runtime.GOMAXPROCS(3)
	applyRuntime(config.RuntimeConfig{GCPercent: 25, MemoryLimitBytes: 1 << 30, MaxProcs: 1}, env, log)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("with GOMAXPROCS set: %d, want it left at 3", got)
	}
	if got := debug.SetGCPercent(-1); got != 50 {
		t.Errorf("with GOGC set: gc percent %d, want it left at 50", got)
	}
	debug.SetGCPercent(50)
	if got := debug.SetMemoryLimit(-1); got != 2<<30 {
		t.Errorf("with GOMEMLIMIT set: memory limit %d, want it left at %d", got, 2<<30)
	}
}

// TestDefaultRuntime: lode.yaml's defaults are what the example file says.
func TestDefaultRuntime(t *testing.T) {
	if got := Defaults().Runtime; got != (config.RuntimeConfig{GCPercent: config.DefaultGCPercent}) {
		t.Errorf("default runtime section %+v", got)
	}
}
