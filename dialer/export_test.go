package dialer

// MarkConnectionsLost records a transport failure on every pooled SSH
// connection without closing it: the moment between keepalive giving up
// (or a read failing) and the connection's end being seen, which is too
// short to hit from outside.
func MarkConnectionsLost(d *Dialer, reason error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sc := range d.conns {
		sc.fail(reason)
	}
}
