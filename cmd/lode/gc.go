package main

import (
	"math"
	"runtime"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/config"
)

// applyRuntime sets the garbage collector's target, the soft memory limit
// and GOMAXPROCS from lode.yaml's runtime section. GOGC, GOMEMLIMIT and
// GOMAXPROCS in the environment (getenv) win: the runtime has read them
// already, and an operator who set them means it. It is called at start and
// again on SIGHUP, so a key removed from the file returns to the runtime's
// default.
func applyRuntime(c config.RuntimeConfig, getenv func(string) string, log *zap.Logger) {
	// envWins reports whether the environment variable env is set, saying
	// so when the file set key too.
	envWins := func(env, key string, keySet bool) bool {
		v := getenv(env)
		if v != "" && keySet {
			log.Info(env+" is set in the environment; "+key+" is not applied", zap.String(env, v))
		}
		return v != ""
	}
	if !envWins("GOGC", "runtime.gc_percent", true) {
		debug.SetGCPercent(c.GCPercent)
	}
	if !envWins("GOMEMLIMIT", "runtime.memory_limit_bytes", c.MemoryLimitBytes > 0) {
		limit := int64(math.MaxInt64) // none
		if c.MemoryLimitBytes > 0 {
			limit = c.MemoryLimitBytes
		}
		debug.SetMemoryLimit(limit)
	}
	if !envWins("GOMAXPROCS", "runtime.max_procs", c.MaxProcs > 0) {
		if c.MaxProcs > 0 {
			runtime.GOMAXPROCS(c.MaxProcs)
		} else {
			runtime.SetDefaultGOMAXPROCS() // every CPU the process may use
		}
	}
}
