//go:build !linux

package execbridge

import "net"

func quickAck(c net.Conn) net.Conn { return c }
