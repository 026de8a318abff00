package stratum

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSession sends arbitrary bytes, split into two writes at an arbitrary
// point, to a real server over TCP and checks that the dispatcher never
// panics, always ends the connection cleanly once the client has finished,
// and keeps serving.
func FuzzSession(f *testing.F) {
	seeds := []string{
		`{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}` + "\n" +
			`{"id":2,"method":"mining.authorize","params":["mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn.w","d=0.001"]}` + "\n" +
			`{"id":3,"method":"mining.submit","params":["mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn.w","1","0000000000000000","504e86ed","b2957c02","1fffe000"]}` + "\n",
		`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"ffffffff","minimum-difficulty.value":[1]}]}` + "\n",
		`{"id":null,"method":"mining.suggest_difficulty","params":[[-1]]}` + "\n" + `{"method":"mining.suggest_target","params":["00000000ffff"]}` + "\n",
		`{"id":1,"method":"mining.submit","params":[]}` + "\n{\n" + `{"id":"x","method":"mining.extranonce.subscribe"}` + "\n",
		"\xff\xfe\x00\n\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	h := startServer(f, func(c *Config) {
		c.Logger = nil
		c.MaxLineLength = 2048
		c.Ban.Disabled = true
	})
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cut := int(at) % (len(data) + 1)
		go func() {
			_, _ = conn.Write(data[:cut])
			time.Sleep(time.Millisecond)
			_, _ = conn.Write(data[cut:])
			_ = conn.(*net.TCPConn).CloseWrite()
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("server did not end the connection: %v", err)
		}
		if n := h.srv.Stats().Panics.Load(); n != 0 {
			t.Fatalf("%d session panics", n)
		}
	})
}
