package sftphelper

import (
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"syscall"
)

// SFTP protocol numbers (draft-ietf-secsh-filexfer-02, version 3, and
// OpenSSH's PROTOCOL file for limits@openssh.com).
const (
	fxpVersion       = 2
	fxpStatus        = 101
	fxpExtended      = 200
	fxpExtendedReply = 201

	fxNoSuchFile       = 2
	fxPermissionDenied = 3
	fxFailure          = 4

	limitsExtension = "limits@openssh.com"
	// maxPacket is the longest packet pkg/sftp accepts (its maxMsgLength)
	// and OpenSSH's SFTP_MAX_MSG_LENGTH; maxReadWrite is the most data
	// one read or write carries, as OpenSSH's sftp-server allows.
	maxPacket    = 256 << 10
	maxReadWrite = maxPacket - 1024

	// maxHeld bounds a packet held whole for inspection; a longer one
	// passes unchanged. The ones held (status, version, extended
	// requests) are a few hundred bytes.
	maxHeld = 64 << 10
)

// replyWriter carries the server's replies to the client and changes two
// of them, holding only those until they are complete; every other packet
// is written through as it comes, so file data is not copied:
//
//   - The version reply gains limits@openssh.com, which OpenSSH's clients
//     (8.7 and later) ask for before choosing the size of their reads and
//     writes: without it they use 32 KiB, with it the 255 KiB that
//     OpenSSH's sftp-server allows, which makes fewer round trips through
//     the container's exec stream. The request is answered by
//     requestReader, through insert.
//   - A status reply of SSH_FX_FAILURE whose message ends with the text of
//     EACCES, EPERM or ENOENT gets SSH_FX_PERMISSION_DENIED or
//     SSH_FX_NO_SUCH_FILE, as from OpenSSH's sftp-server: pkg/sftp
//     (v1.13.12) maps errno values to codes only for *os.PathError, so a
//     rename, symlink or hard link that the kernel refused (an
//     *os.LinkError) reaches the client as "Failure". pkg/sftp sends the
//     error's text as the message, and os.LinkError.Error ends with the
//     errno's own text, which is what is matched.
type replyWriter struct {
	mu   sync.Mutex
	cond sync.Cond // on mu: a packet ended
	w    io.WriteCloser

	// The packet being written: its length and type, how much of its
	// body is still to come, and either held whole or passed through.
	hdr  [5]byte
	nhdr int
	left uint32
	pass bool
	hold []byte
}

func newReplyWriter(w io.WriteCloser) *replyWriter {
	f := &replyWriter{w: w}
	f.cond.L = &f.mu
	return f
}

func (f *replyWriter) Close() error { return f.w.Close() }

func (f *replyWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if f.nhdr < len(f.hdr) {
			c := copy(f.hdr[f.nhdr:], p)
			f.nhdr += c
			p = p[c:]
			if f.nhdr < len(f.hdr) {
				break
			}
			length := binary.BigEndian.Uint32(f.hdr[:4])
			if length == 0 {
				// No type byte (not a packet pkg/sftp writes): pass the
				// length through; the byte read as its type starts the
				// next packet.
				if err := f.write(f.hdr[:4]); err != nil {
					return 0, err
				}
				f.hdr[0], f.nhdr = f.hdr[4], 1
				continue
			}
			f.left = length - 1
			typ := f.hdr[4]
			f.pass = typ != fxpStatus && typ != fxpVersion || length > maxHeld
			if f.pass {
				if err := f.write(f.hdr[:]); err != nil {
					return 0, err
				}
			} else {
				f.hold = append(f.hold[:0], f.hdr[:]...)
			}
		}
		c := int(min(uint32(len(p)), f.left))
		if f.pass {
			if err := f.write(p[:c]); err != nil {
				return 0, err
			}
		} else {
			f.hold = append(f.hold, p[:c]...)
		}
		p = p[c:]
		f.left -= uint32(c)
		if f.left == 0 {
			if !f.pass {
				pkt := f.hold
				switch pkt[4] {
				case fxpStatus:
					fixStatus(pkt)
				case fxpVersion:
					pkt = addExtension(pkt, limitsExtension, "1")
				}
				if err := f.write(pkt); err != nil {
					return 0, err
				}
				f.hold = pkt[:0]
			}
			f.nhdr = 0
			f.cond.Broadcast()
		}
	}
	return n, nil
}

// insert writes a whole packet of its own between two of the server's.
func (f *replyWriter) insert(pkt []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.nhdr != 0 {
		f.cond.Wait()
	}
	return f.write(pkt)
}

func (f *replyWriter) write(p []byte) error {
	_, err := f.w.Write(p)
	return err
}

// fixStatus corrects, in place, the code of a whole SSH_FXP_STATUS packet
// (length, type, id, code, message, language) whose code is
// SSH_FX_FAILURE and whose message ends with the text of an errno that
// has its own code.
func fixStatus(pkt []byte) {
	const codeAt = 4 + 1 + 4
	if len(pkt) < codeAt+4+4 || binary.BigEndian.Uint32(pkt[codeAt:]) != fxFailure {
		return
	}
	msgLen := binary.BigEndian.Uint32(pkt[codeAt+4:])
	body := pkt[codeAt+8:]
	if uint64(msgLen) > uint64(len(body)) {
		return
	}
	msg := string(body[:msgLen])
	for _, m := range []struct {
		errno syscall.Errno
		code  uint32
	}{
		{syscall.EACCES, fxPermissionDenied},
		{syscall.EPERM, fxPermissionDenied},
		{syscall.ENOENT, fxNoSuchFile},
	} {
		if strings.HasSuffix(msg, ": "+m.errno.Error()) {
			binary.BigEndian.PutUint32(pkt[codeAt:], m.code)
			return
		}
	}
}

// addExtension appends an extension pair (name, data) to a whole
// SSH_FXP_VERSION packet and fixes its length.
func addExtension(pkt []byte, name, data string) []byte {
	pkt = binary.BigEndian.AppendUint32(pkt, uint32(len(name)))
	pkt = append(pkt, name...)
	pkt = binary.BigEndian.AppendUint32(pkt, uint32(len(data)))
	pkt = append(pkt, data...)
	binary.BigEndian.PutUint32(pkt, uint32(len(pkt)-4))
	return pkt
}

// requestReader carries the client's requests to the server and answers
// one itself: limits@openssh.com, which pkg/sftp does not know, with
// OpenSSH's sftp-server's sizes (see replyWriter). Only extended requests
// are held until complete (they are small); every other packet, file data
// included, is read through.
type requestReader struct {
	r       io.Reader
	replies *replyWriter

	hdr     [5]byte
	left    uint32 // body bytes of the current packet still to read through
	pending []byte // bytes to hand out before reading on
}

func (q *requestReader) Read(p []byte) (int, error) {
	for {
		if len(q.pending) > 0 {
			n := copy(p, q.pending)
			q.pending = q.pending[n:]
			return n, nil
		}
		if q.left > 0 {
			n, err := q.r.Read(p[:min(uint32(len(p)), q.left)])
			q.left -= uint32(n)
			switch {
			case err == io.EOF && q.left > 0:
				err = io.ErrUnexpectedEOF
			case err == io.EOF:
				err = nil // the packet is whole; the next read finds the end
			}
			return n, err
		}
		if _, err := io.ReadFull(q.r, q.hdr[:4]); err != nil {
			return 0, err // io.EOF between two packets: the client's end
		}
		length := binary.BigEndian.Uint32(q.hdr[:4])
		if length == 0 {
			// Not a packet; pkg/sftp will say so.
			q.pending = q.hdr[:4]
			continue
		}
		if _, err := io.ReadFull(q.r, q.hdr[4:5]); err != nil {
			return 0, unexpected(err)
		}
		if q.hdr[4] != fxpExtended || length > maxHeld {
			q.pending, q.left = q.hdr[:5], length-1
			continue
		}
		pkt := make([]byte, 4+length)
		copy(pkt, q.hdr[:5])
		if _, err := io.ReadFull(q.r, pkt[5:]); err != nil {
			return 0, unexpected(err)
		}
		if id, ok := limitsRequest(pkt); ok {
			if err := q.replies.insert(limitsReply(id)); err != nil {
				return 0, err
			}
			continue
		}
		q.pending = pkt
	}
}

// unexpected is err for a stream that ended inside a packet.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// limitsRequest returns the request ID of a whole SSH_FXP_EXTENDED packet
// (length, type, id, request name, data) that asks for
// limits@openssh.com.
func limitsRequest(pkt []byte) (uint32, bool) {
	if len(pkt) < 4+1+4+4 {
		return 0, false
	}
	id := binary.BigEndian.Uint32(pkt[5:])
	nameLen := binary.BigEndian.Uint32(pkt[9:])
	name := pkt[13:]
	if uint64(nameLen) > uint64(len(name)) {
		return 0, false
	}
	return id, string(name[:nameLen]) == limitsExtension
}

// limitsReply is the SSH_FXP_EXTENDED_REPLY to limits@openssh.com: the
// longest packet, read and write, and no limit on open handles (0).
func limitsReply(id uint32) []byte {
	pkt := []byte{0, 0, 0, 0, fxpExtendedReply}
	pkt = binary.BigEndian.AppendUint32(pkt, id)
	for _, v := range []uint64{maxPacket, maxReadWrite, maxReadWrite, 0} {
		pkt = binary.BigEndian.AppendUint64(pkt, v)
	}
	binary.BigEndian.PutUint32(pkt, uint32(len(pkt)-4))
	return pkt
}
