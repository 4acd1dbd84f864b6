package sftphelper

import (
	"encoding/binary"
	"io"
	"strings"
	"syscall"
)

// SFTP protocol numbers (draft-ietf-secsh-filexfer-02, version 3).
const (
	fxpStatus          = 101
	fxFailure          = 4
	fxNoSuchFile       = 2
	fxPermissionDenied = 3
	// maxStatusPacket bounds a status reply held for inspection; a longer
	// one passes unchanged. pkg/sftp's are a few hundred bytes.
	maxStatusPacket = 64 << 10
)

// statusFixer passes the server's replies through and corrects the code
// of one kind of status reply: pkg/sftp (v1.13.12) maps errno values to
// status codes only for *os.PathError, so the *os.LinkError of a rename,
// symlink or hard link that the kernel refused reaches the client as
// SSH_FX_FAILURE ("Failure"), where OpenSSH's sftp-server answers
// SSH_FX_PERMISSION_DENIED or SSH_FX_NO_SUCH_FILE. The error's text, which
// pkg/sftp sends as the message, ends with the errno's own text (as
// os.LinkError.Error formats it), and that is what is matched.
//
// Only a status reply is held until it is complete (at most
// maxStatusPacket bytes); every other packet is written through as it
// comes, so file data is not copied.
type statusFixer struct {
	w io.WriteCloser

	hdr  [5]byte // length and type of the packet being read
	nhdr int     // bytes of hdr filled
	left uint32  // bytes of the current packet's body still to come
	hold []byte  // a whole status packet, while it is collected
	pass bool    // the current packet is written through
}

func (f *statusFixer) Close() error { return f.w.Close() }

func (f *statusFixer) Write(p []byte) (int, error) {
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
			f.pass = f.hdr[4] != fxpStatus || length > maxStatusPacket
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
				fixStatus(f.hold)
				if err := f.write(f.hold); err != nil {
					return 0, err
				}
			}
			f.nhdr = 0
		}
	}
	return n, nil
}

func (f *statusFixer) write(p []byte) error {
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
