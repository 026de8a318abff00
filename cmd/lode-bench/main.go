// Command lode-bench is a Stratum V1 load generator: N connections to any
// pool, each mining real shares at the pool's difficulty, reporting
// accepted shares/s, submit→reply latency, new-block fan-out and, when the
// pool's pid is given, its RSS per connection and CPU per accepted share.
//
//	lode-bench -url stratum+tcp://127.0.0.1:3333 -user <address>.w1 -conns 100 -duration 60s
//	lode-bench serve -listen 127.0.0.1:3333   # a Lode server on a recorded template, to measure
//	lode-bench floor -listen 127.0.0.1:3334   # the fan-out floor: no pool logic
//	lode-bench record -redis 127.0.0.1:6379   # the share ledger alone against a Redis: shares/s
//
// Without -duration it runs until interrupted (Ctrl-C), redialing lost
// connections. See bench/README.md for the measurements made with it.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "load"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "floor" || args[0] == "load" || args[0] == "record") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "floor":
		err = floor(args)
	case "record":
		err = record(args)
	default:
		err = runLoad(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lode-bench:", err)
		os.Exit(1)
	}
}
