package load

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"syscall"
)

// ListenEchoEpoll is ListenEcho with the connections served by one
// event loop instead of a goroutine each: a goroutine locked to its thread
// waits in epoll_wait on every socket, reads what is ready and writes the
// answers. It measures what the Go runtime's goroutine-per-connection
// model costs per request at paced rates (the runtime parks and wakes
// threads between requests; an event loop only wakes for the kernel).
// Answers that do not fit the socket buffer are dropped: a floor, not a
// server.
func ListenEchoEpoll(addr string, notify []byte, diff float64) (*FloorServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen epoll echo server %s: %w", addr, err)
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	f := &FloorServer{l: l, done: make(chan struct{}), echo: true, notify: notify, diff: diff}
	conns := make(chan int, 1024)
	go f.acceptEpoll(conns)
	f.wg.Add(1)
	go f.loopEpoll(epfd, conns)
	return f, nil
}

// acceptEpoll accepts connections and hands each one's socket (a
// duplicate, in non-blocking mode, owned by the event loop) to loopEpoll.
func (f *FloorServer) acceptEpoll(conns chan<- int) {
	defer close(f.done)
	defer close(conns)
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			c.Close()
			continue
		}
		fd := -1
		_ = rc.Control(func(s uintptr) { fd, _ = syscall.Dup(int(s)) })
		c.Close()
		if fd < 0 || syscall.SetNonblock(fd, true) != nil {
			continue
		}
		conns <- fd
	}
}

type epollConn struct {
	buf []byte // a partial line carried to the next read
	n   uint32
}

// loopEpoll is the event loop. New sockets come from conns, checked after
// every wait (the wait times out every 10 ms so a new connection is
// registered without a wake-up channel).
func (f *FloorServer) loopEpoll(epfd int, conns <-chan int) {
	defer f.wg.Done()
	runtime.LockOSThread()
	defer syscall.Close(epfd)
	state := map[int32]*epollConn{}
	defer func() {
		for fd := range state {
			syscall.Close(int(fd))
		}
	}()
	events := make([]syscall.EpollEvent, 256)
	rbuf := make([]byte, 64<<10)
	var out []byte
	drop := func(fd int32) {
		_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		syscall.Close(int(fd))
		delete(state, fd)
	}
	for {
	register:
		for {
			select {
			case fd, ok := <-conns:
				if !ok {
					return
				}
				ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
				if syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
					syscall.Close(fd)
					continue
				}
				state[int32(fd)] = &epollConn{}
			default:
				break register
			}
		}
		n, err := syscall.EpollWait(epfd, events, 10)
		if err != nil && err != syscall.EINTR {
			return
		}
		for i := 0; i < n; i++ {
			fd := events[i].Fd
			c := state[fd]
			if c == nil {
				continue
			}
			m, err := syscall.Read(int(fd), rbuf)
			if m <= 0 {
				if err != syscall.EAGAIN {
					drop(fd)
				}
				continue
			}
			data := rbuf[:m]
			if len(c.buf) > 0 {
				c.buf = append(c.buf, data...)
				data = c.buf
			}
			out = out[:0]
			ok := true
			for ok {
				j := bytes.IndexByte(data, '\n')
				if j < 0 {
					break
				}
				out, ok = f.echoReply(out, data[:j+1], &c.n)
				data = data[j+1:]
			}
			if !ok {
				drop(fd)
				continue
			}
			c.buf = append(c.buf[:0], data...)
			if len(out) > 0 {
				if _, err := syscall.Write(int(fd), out); err != nil && err != syscall.EAGAIN {
					drop(fd)
				}
			}
		}
	}
}
