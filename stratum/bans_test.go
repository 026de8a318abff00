package stratum

import (
	"context"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/stratum/message"
)

// TestBansSharedAcrossFrontends: two servers (frontends) share bans through
// a real Redis. A worker banned at one is disconnected and refused at the
// other within the refresh; an unban at one lifts it at both; an IP ban
// made at one refuses new connections at the other.
func TestBansSharedAcrossFrontends(t *testing.T) {
	srv := testenv.StartRedis(t, "--appendonly", "no")
	store, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "bans"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Client().Close() })
	a, b := startServer(t, nil), startServer(t, nil)
	const refresh = 100 * time.Millisecond
	a.srv.UseBanStore(store, refresh)
	b.srv.UseBanStore(store, refresh)
	ctx := context.Background()
	user := testAddress(t, 91)

	atB := dial(t, b.addr)
	atB.handshake(user)
	if err := a.srv.Ban(ctx, user, time.Minute); err != nil {
		t.Fatal(err)
	}
	atB.expectClosed() // closed by B's refresh, not by A

	refused := func(h *harness) bool {
		time.Sleep(20 * time.Millisecond) // a few dials per refresh, not hundreds
		c := dial(t, h.addr)
		defer c.conn.Close()
		c.call("1", message.MethodSubscribe, `[]`)
		return c.call("2", message.MethodAuthorize, `["`+user+`","x"]`).code() == message.CodeUnauthorized
	}
	if !refused(b) {
		t.Fatal("the worker banned at A authorized at B")
	}
	if err := b.srv.Unban(ctx, user); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unban at B lifted at A", func() bool { return !refused(a) })

	if err := a.srv.Ban(ctx, "127.0.0.1", time.Minute); err != nil {
		t.Fatal(err)
	}
	dial(t, b.addr).expectClosed()
	if err := a.srv.Unban(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IP unban at A lifted at B", func() bool {
		time.Sleep(20 * time.Millisecond)
		c := dial(t, b.addr)
		defer c.conn.Close()
		c.write(`{"id":1,"method":"` + message.MethodSubscribe + `","params":[]}` + "\n")
		m, err := c.read()
		return err == nil && m.code() == 0
	})
}
