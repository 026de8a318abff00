package bitcoind

import (
	"encoding/hex"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/internal/testenv"
)

var chainParams = chaincfg.RegressionNetParams

// nodes are the package's shared btcd and Core, for tests that leave the
// node running (see testenv.SharedNodes).
var nodes testenv.SharedNodes

func TestMain(m *testing.M) {
	code := m.Run()
	nodes.Close()
	os.Exit(code)
}

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

// startSilentServer accepts TCP connections on a loopback port and never
// answers: a hung node, which a real btcd cannot be made to be on demand.
func startSilentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
