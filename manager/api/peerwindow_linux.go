package api

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerWindow is the receive window the client last advertised on c (Linux
// 5.4 and later report it in TCP_INFO; older kernels report 0, which the
// caller takes as unknown).
func peerWindow(c net.Conn) (uint32, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	cerr := raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil || info == nil {
		return 0, false
	}
	return info.Snd_wnd, true
}
