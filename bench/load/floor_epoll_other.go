//go:build !linux

package load

import (
	"errors"
)

// ListenEchoEpoll is only built on Linux (epoll).
func ListenEchoEpoll(addr string, notify []byte, diff float64) (*FloorServer, error) {
	return nil, errors.New("the epoll echo floor needs Linux")
}
