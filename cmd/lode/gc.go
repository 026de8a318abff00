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
// again on SIGHUP.
func applyRuntime(c config.RuntimeConfig, getenv func(string) string, log *zap.Logger) {
	if v := getenv("GOGC"); v != "" {
		log.Info("GOGC is set in the environment; runtime.gc_percent is not applied", zap.String("GOGC", v))
	} else {
		debug.SetGCPercent(c.GCPercent)
	}
	switch v := getenv("GOMEMLIMIT"); {
	case v != "":
		if c.MemoryLimitBytes > 0 {
			log.Info("GOMEMLIMIT is set in the environment; runtime.memory_limit_bytes is not applied", zap.String("GOMEMLIMIT", v))
		}
	case c.MemoryLimitBytes > 0:
		debug.SetMemoryLimit(c.MemoryLimitBytes)
	default:
		debug.SetMemoryLimit(math.MaxInt64) // none; also undoes a limit removed by a reload
	}
	switch v := getenv("GOMAXPROCS"); {
	case v != "":
		if c.MaxProcs > 0 {
			log.Info("GOMAXPROCS is set in the environment; runtime.max_procs is not applied", zap.String("GOMAXPROCS", v))
		}
	case c.MaxProcs > 0:
		runtime.GOMAXPROCS(c.MaxProcs)
	default:
		runtime.SetDefaultGOMAXPROCS() // every CPU; also undoes a value removed by a reload
	}
}
