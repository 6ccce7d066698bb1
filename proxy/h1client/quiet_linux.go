package h1client

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// quiet reports whether an idle connection is still open and has nothing to
// read: a closed connection, or one with unsolicited bytes (a late answer,
// a TLS alert), must not carry a request. It peeks without blocking.
func quiet(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		ok = errno == syscall.EAGAIN // neither data nor end of stream
		return true
	})
	return err == nil && ok
}
