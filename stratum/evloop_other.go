//go:build !linux

package stratum

import (
	"errors"
	"time"
)

// The event loop needs epoll; elsewhere every connection has a reader
// goroutine (Config.ReadLoop is then "goroutine" in effect).
type poller struct{}

type armState struct{}

var errNoEventLoop = errors.New("read_loop epoll: no epoll on this system; connections use reader goroutines")

func newPoller(*Server) (*poller, error) { return nil, errNoEventLoop }

func (*poller) close()                        {}
func (*poller) add(*Session, time.Time) error { return errNoEventLoop }
func (*poller) remove(*Session)               {}
func (*Session) rearm() error                 { return errNoEventLoop }
