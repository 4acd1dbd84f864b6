package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"
)

// The built-in patterns run as a second streaming stage after the literal
// one, so a registered secret is always masked whole, even where a pattern
// would have cut it, and the pattern stage sees its mask as an opaque
// token.
//
// In its idle state the stage only looks for anchor bytes (':', '=', '/',
// '-') and holds nothing back: at an anchor it looks at the (already
// written) bytes before it to decide whether a pattern begins. What it then
// holds back is bounded per pattern (see the package documentation):
//
//   - key/value (password=..., "token": "...", X-Api-Key: ...): nothing is
//     held; the value's bytes are dropped as they come and its mask is
//     written when the value ends (at most maxValue bytes).
//   - Authorization: the first word after the separator (at most
//     maxScheme bytes) until it is known to be a scheme or the credential.
//   - URL user info: the authority after "://" (at most maxAuthority bytes)
//     until it ends, because only its last '@' tells user info from host.
//   - PEM private key: nothing; the body is dropped (at most maxPEM bytes)
//     until its END line, whose text is written after the mask.
const (
	histLen      = 64
	maxValue     = 16 << 10
	maxScheme    = 32
	maxAuthority = 256
	maxPEM       = 64 << 10
	maxVPre      = 64
)

type pmode uint8

const (
	pIdle   pmode = iota
	pPre          // after a key's separator: spaces, then maybe a quote
	pValue        // dropping a value
	pScheme       // Authorization: holding the first word
	pUser         // after "://": holding the authority
	pPEM          // dropping a private key body
)

type vkind uint8

const (
	vUnquoted vkind = iota // ends at whitespace or one of ,;&"'`)]}<>
	vQuoted                // ends at the closing quote or a line break
	vToken68               // Basic/Bearer credential: RFC 7235 token68
	vLine                  // other Authorization schemes: to the line end or closing quote
)

// sensitiveKeys end the names of keys whose value is masked, compared
// case-insensitively against the end of the key ("DOCKER_PASSWORD",
// "client_secret", "X-Auth-Token", "spring.datasource.password").
// Deliberately absent: "pass", "pwd" (PWD is the working directory) and a
// bare "key" (sort_key, monkey): their false positives would garble
// ordinary output. URL queries use the wider list in url.go.
var sensitiveKeys = [...]string{
	"password", "passwd", "passphrase", "secret", "token",
	"apikey", "api_key", "api-key", "access_key", "accesskey",
	"private_key", "privatekey", "credential", "credentials",
	"signature", "authorization",
}

// Byte classes of the pattern stage: constant lookup tables.
var (
	anchorByte   = byteSet(func(c byte) bool { return c == ':' || c == '=' || c == '/' || c == '-' })
	identByte    = byteSet(func(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' })
	token68Byte  = byteSet(func(c byte) bool { return isAlnum(c) || in(c, "-._~+/=") })
	schemeByte   = byteSet(func(c byte) bool { return isAlnum(c) || c == '-' })
	pemBodyByte  = byteSet(func(c byte) bool { return isAlnum(c) || in(c, "+/=\r\n\t \\:,-") })
	authorityEnd = byteSet(func(c byte) bool { return c <= ' ' || c == 0x7f || in(c, "/?#\"'`<>\\") })
	unquotedEnd  = byteSet(func(c byte) bool { return c <= ' ' || in(c, ",;&\"'`)]}<>") })
	// keysByLast lists the sensitive keys by their last byte.
	keysByLast = func() (t [256][]string) {
		for _, k := range sensitiveKeys {
			t[k[len(k)-1]] = append(t[k[len(k)-1]], k)
		}
		return t
	}()
)

func byteSet(f func(byte) bool) (t [256]bool) {
	for c := range 256 {
		t[c] = f(byte(c))
	}
	return t
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func in(c byte, set string) bool { return strings.IndexByte(set, c) >= 0 }

// patStage is the built-in pattern matcher; see the comment above.
type patStage struct {
	r    *Redactor
	out  *[]byte
	mode pmode

	hist [histLen]byte // last idle bytes, for looking back from an anchor
	nh   int
	tmp  [2 * histLen]byte

	auth     bool  // pPre: the key was Authorization
	esc      int   // backslashes before the opening quote
	spaces   int   // pPre: separator spaces seen
	seps     int   // pPre: extra separator bytes seen (":=", "=>")
	quote    byte  // closing quote of the value, 0 when unquoted
	kind     vkind // pValue
	bsl      bool  // vQuoted: the previous byte was a backslash
	skipLead bool  // pValue: skip spaces before the value

	vlen  int // bytes of the current value (or PEM body)
	vpre  [maxVPre]byte
	nvpre int
	mac   hash.Hash // fingerprint of the current value
	sum   [sha256.Size]byte

	hold      []byte // pScheme word, pUser authority, pPEM END marker
	ssh       bool   // pUser: the scheme names a user, not a token
	em, ed    int    // pPEM: progress through "-----END ", then closing dashes
	refeed    []byte
	refeeding bool
	scratch   []byte // unescaped user info part
	one       [1]byte
}

func (s *patStage) init(r *Redactor, out *[]byte) {
	s.r = r
	s.out = out
	s.hold = make([]byte, 0, 2*maxAuthority)
	if r.fingerprint {
		s.mac = hmac.New(sha256.New, r.key)
	}
}

func (s *patStage) feed(b []byte) {
	for len(b) > 0 {
		switch s.mode {
		case pIdle:
			b = s.idle(b)
		case pPre:
			b = s.pre(b)
		case pValue:
			b = s.value(b)
		case pScheme:
			b = s.scheme(b)
		case pUser:
			b = s.user(b)
		case pPEM:
			b = s.pem(b)
		}
	}
}

// token takes a mask written by the literal stage.
func (s *patStage) token(m []byte) {
	switch s.mode {
	case pIdle:
		s.nh = 0
		*s.out = append(*s.out, m...)
	case pPre:
		s.emitBackslashes()
		*s.out = append(*s.out, m...)
		s.startValue(vUnquoted)
		if s.auth {
			s.kind = vToken68
		}
	case pValue:
		s.skipLead = false
		s.endValue()
		*s.out = append(*s.out, m...)
	case pScheme:
		if len(s.hold) > 0 {
			s.valueBytes(s.hold)
			s.hold = s.hold[:0]
			s.endValue()
		}
		*s.out = append(*s.out, m...)
		s.startValue(vToken68)
	case pUser:
		s.hold = append(s.hold, m...)
	case pPEM:
		s.valueBytes(m)
		s.em, s.ed = 0, 0
		s.hold = s.hold[:0]
	}
}

// flush ends what is held, as at the end of the input. A value or a PEM
// body being dropped gets its mask now and goes on being dropped.
func (s *patStage) flush() {
	switch s.mode {
	case pPre:
		s.emitBackslashes()
	case pValue, pPEM:
		s.endValue()
	case pScheme:
		s.valueBytes(s.hold)
		s.hold = s.hold[:0]
		s.endValue()
		s.toIdle()
	case pUser:
		s.endUser()
	}
}

func (s *patStage) toIdle() {
	s.mode = pIdle
	s.nh = 0
}

// idle writes bytes through until an anchor starts a pattern.
func (s *patStage) idle(b []byte) []byte {
	for i := 0; ; i++ {
		for i < len(b) && !anchorByte[b[i]] {
			i++
		}
		if i >= len(b) {
			s.emitIdle(b)
			return nil
		}
		c := b[i]
		// Cheap rejections on the byte before the anchor, which is in b
		// except at its very start; the full checks look further back.
		if i > 0 {
			switch p := b[i-1]; c {
			case ':', '=':
				if identByte[p] && len(keysByLast[lower(p)]) == 0 {
					continue
				}
			case '/':
				if p != '/' {
					continue
				}
			case '-':
				// "...KEY-----" or "...KEY BLOCK-----"
				if p != '-' || i >= 5 && b[i-5] != 'Y' && b[i-5] != 'K' {
					continue
				}
			}
		}
		switch c {
		case ':', '=':
			if auth, ok := s.keyBefore(b, i); ok {
				s.emitIdle(b[:i+1])
				s.mode = pPre
				s.auth = auth
				s.esc, s.spaces, s.seps, s.quote = 0, 0, 0, 0
				return b[i+1:]
			}
		case '/':
			if ssh, ok := s.urlBefore(b, i); ok {
				s.emitIdle(b[:i+1])
				s.mode = pUser
				s.ssh = ssh
				s.hold = s.hold[:0]
				return b[i+1:]
			}
		case '-':
			if s.pemBefore(b, i) {
				s.emitIdle(b[:i+1])
				s.mode = pPEM
				s.em, s.ed = 0, 0
				s.hold = s.hold[:0]
				s.vlen, s.nvpre = 0, 0
				return b[i+1:]
			}
		}
	}
}

// emitIdle writes b and remembers its end for looking back.
func (s *patStage) emitIdle(b []byte) {
	*s.out = append(*s.out, b...)
	if len(b) >= histLen {
		s.nh = copy(s.hist[:], b[len(b)-histLen:])
		return
	}
	if s.nh+len(b) > histLen {
		drop := s.nh + len(b) - histLen
		copy(s.hist[:], s.hist[drop:s.nh])
		s.nh -= drop
	}
	s.nh += copy(s.hist[s.nh:], b)
}

// before returns up to histLen bytes that precede b[i].
func (s *patStage) before(b []byte, i int) []byte {
	if i >= histLen || s.nh == 0 {
		return b[max(0, i-histLen):i]
	}
	n := copy(s.tmp[:], s.hist[:s.nh])
	n += copy(s.tmp[n:], b[:i])
	return s.tmp[max(0, n-histLen):n]
}

// keyBefore reports whether the separator at b[i] follows a sensitive key
// name (allowing quotes, backslashes and spaces in between), and whether
// that key is Authorization.
func (s *patStage) keyBefore(b []byte, i int) (auth, ok bool) {
	t := s.before(b, i)
	j := len(t)
	for n := 0; j > 0 && n < 8 && (t[j-1] == ' ' || t[j-1] == '\t'); n++ {
		j--
	}
	for n := 0; j > 0 && n < 4 && (t[j-1] == '"' || t[j-1] == '\'' || t[j-1] == '`' || t[j-1] == '\\'); n++ {
		j--
	}
	end := j
	if end == 0 {
		return false, false
	}
	keys := keysByLast[lower(t[end-1])]
	if len(keys) == 0 {
		return false, false
	}
	for j > 0 && identByte[t[j-1]] {
		j--
	}
	id := t[j:end]
	for _, k := range keys {
		if hasSuffixFold(id, k) {
			return k == "authorization", true
		}
	}
	return false, false
}

// urlBefore reports whether the '/' at b[i] completes "://", and whether
// the URL's scheme is one whose bare user info is a user name.
func (s *patStage) urlBefore(b []byte, i int) (ssh, ok bool) {
	t := s.before(b, i)
	if len(t) < 2 || t[len(t)-1] != '/' || t[len(t)-2] != ':' {
		return false, false
	}
	j := len(t) - 2
	end := j
	for j > 0 && (schemeByte[t[j-1]] || t[j-1] == '+' || t[j-1] == '.') {
		j--
	}
	return isUserScheme(t[j:end]), true
}

// isUserScheme reports whether a URL of this scheme carries a user name,
// not a token, when its user info has no password (ssh://git@host).
func isUserScheme(scheme []byte) bool {
	for _, k := range [...]string{"ssh", "sftp", "scp", "git+ssh", "ssh+git", "git", "rsync"} {
		if len(scheme) == len(k) && hasSuffixFold(scheme, k) {
			return true
		}
	}
	return false
}

// pemBefore reports whether the '-' at b[i] ends a line
// "-----BEGIN ... PRIVATE KEY-----".
func (s *patStage) pemBefore(b []byte, i int) bool {
	t := s.before(b, i)
	var label int
	switch {
	case bytes.HasSuffix(t, []byte("PRIVATE KEY----")):
		label = len(t) - len("----")
	case bytes.HasSuffix(t, []byte("PRIVATE KEY BLOCK----")):
		label = len(t) - len("----")
	default:
		return false
	}
	begin := bytes.LastIndex(t[:label], []byte("-----BEGIN "))
	if begin < 0 {
		return false
	}
	for _, c := range t[begin+len("-----BEGIN ") : label] {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ' ') {
			return false
		}
	}
	return true
}

// pre skips the separator's spaces and an opening quote, then starts the
// value.
func (s *patStage) pre(b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case s.esc == 0 && (c == ' ' || c == '\t') && s.spaces < 16:
			s.spaces++
		case s.esc == 0 && (c == '=' || c == '>' || c == ':') && s.seps < 2:
			s.seps++
		case c == '\\' && s.esc < 8:
			*s.out = append(*s.out, b[start:i]...)
			start = i + 1
			s.esc++
		case c == '"' || c == '\'' || c == '`':
			*s.out = append(*s.out, b[start:i]...)
			escaped := s.esc > 0
			s.emitBackslashes()
			*s.out = append(*s.out, c)
			if s.auth {
				s.mode = pScheme
				s.hold = s.hold[:0]
				s.vlen, s.nvpre = 0, 0
			} else {
				s.startValue(vQuoted)
			}
			s.quote = c
			if escaped {
				s.esc = 1 // inside an escaped string: ends at \"
			}
			return b[i+1:]
		case c == '\r' || c == '\n' || unquotedEnd[c] && c != ' ' && c != '\t':
			*s.out = append(*s.out, b[start:i]...)
			s.emitBackslashes()
			s.toIdle()
			return b[i:]
		default:
			*s.out = append(*s.out, b[start:i]...)
			n := s.esc
			s.esc = 0
			s.quote = 0
			if s.auth {
				s.emitN('\\', n)
				s.mode = pScheme
				s.hold = s.hold[:0]
				s.vlen, s.nvpre = 0, 0
				return b[i:]
			}
			s.startValue(vUnquoted)
			s.one[0] = '\\'
			for range n {
				s.valueBytes(s.one[:])
			}
			return b[i:]
		}
	}
	*s.out = append(*s.out, b[start:]...)
	return nil
}

func (s *patStage) emitBackslashes() {
	s.emitN('\\', s.esc)
	s.esc = 0
}

func (s *patStage) emitN(c byte, n int) {
	for range n {
		*s.out = append(*s.out, c)
	}
}

func (s *patStage) startValue(k vkind) {
	s.mode = pValue
	s.kind = k
	s.bsl = false
	s.skipLead = false
	s.vlen, s.nvpre = 0, 0
	if s.mac != nil {
		s.mac.Reset()
	}
}

// valueBytes takes bytes of the value being masked.
func (s *patStage) valueBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	if s.vlen == 0 && s.mac != nil {
		s.mac.Reset()
	}
	if s.nvpre == s.vlen && s.nvpre < maxVPre {
		s.nvpre += copy(s.vpre[s.nvpre:], b)
	}
	s.vlen += len(b)
	if s.mac != nil {
		s.mac.Write(b)
	}
}

// endValue writes the mask of the value taken so far, or the value itself
// when it is already a mask.
func (s *patStage) endValue() {
	if s.vlen == 0 {
		return
	}
	switch {
	case s.nvpre == s.vlen && s.r.isMask(s.vpre[:s.nvpre]):
		*s.out = append(*s.out, s.vpre[:s.nvpre]...)
	case s.mac != nil:
		*s.out = s.r.appendFingerprint(*s.out, s.mac.Sum(s.sum[:0]))
	default:
		*s.out = append(*s.out, s.r.mask...)
	}
	s.vlen, s.nvpre = 0, 0
}

// value drops the value's bytes until it ends.
func (s *patStage) value(b []byte) []byte {
	i := 0
	if s.skipLead {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		*s.out = append(*s.out, b[:i]...)
		if i == len(b) {
			return nil
		}
		s.skipLead = false
	}
	start := i
	for ; i < len(b); i++ {
		if s.vlen+i-start >= maxValue || s.endsValue(b[start:i], b[i]) {
			break
		}
	}
	s.valueBytes(b[start:i])
	if i < len(b) {
		s.endValue()
		s.toIdle()
		return b[i:]
	}
	return nil
}

// endsValue reports whether c ends the value; seen are the value bytes
// before c in the current chunk, already counted or not.
func (s *patStage) endsValue(seen []byte, c byte) bool {
	switch s.kind {
	case vUnquoted:
		if !unquotedEnd[c] {
			return false
		}
		// A mask written by an earlier redaction may contain a byte that
		// would end a value ("[REDACTED]"): keep it whole.
		return !s.maskContinues(seen, c)
	case vQuoted:
		if c == '\n' || c == '\r' {
			return true
		}
		if s.esc > 0 {
			// The value is inside an escaped string (\"...\"): its end
			// is the backslash of the closing \".
			return c == '\\' || c == s.quote
		}
		if s.bsl {
			s.bsl = false
			return false
		}
		if c == '\\' {
			s.bsl = true
			return false
		}
		return c == s.quote
	case vToken68:
		return !token68Byte[c]
	default: // vLine
		return c == '\n' || c == '\r' || s.quote != 0 && c == s.quote
	}
}

// maskContinues reports whether the value so far followed by c is still
// the beginning of a mask.
func (s *patStage) maskContinues(seen []byte, c byte) bool {
	n := s.vlen + len(seen) + 1
	if n > maxVPre {
		return false
	}
	var buf [maxVPre]byte
	k := copy(buf[:], s.vpre[:s.nvpre])
	if k != s.vlen {
		return false
	}
	k += copy(buf[k:], seen)
	buf[k] = c
	return s.r.isMaskPrefix(buf[:k+1])
}

// scheme holds the first word after "Authorization:" until it is known to
// be a scheme (followed by a space) or the credential itself.
func (s *patStage) scheme(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case schemeByte[c] && len(s.hold) < maxScheme:
			s.hold = append(s.hold, c)
		case c == ' ' && len(s.hold) > 0:
			*s.out = append(*s.out, s.hold...)
			k := vLine
			for _, t := range [...]string{"basic", "bearer", "token"} {
				if len(s.hold) == len(t) && hasSuffixFold(s.hold, t) {
					k = vToken68
				}
			}
			s.hold = s.hold[:0]
			s.startValue(k)
			s.skipLead = true
			return b[i:]
		case token68Byte[c]:
			// Not a scheme: the word is (the start of) the credential.
			s.startValue(vToken68)
			s.valueBytes(s.hold)
			s.hold = s.hold[:0]
			return b[i:]
		default:
			s.startValue(vToken68)
			s.valueBytes(s.hold)
			s.hold = s.hold[:0]
			s.endValue()
			s.toIdle()
			return b[i:]
		}
	}
	return nil
}

// user holds the authority after "://" until it ends.
func (s *patStage) user(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if authorityEnd[b[i]] || len(s.hold)+i >= maxAuthority {
			s.hold = append(s.hold, b[:i]...)
			s.endUser()
			return b[i:]
		}
	}
	s.hold = append(s.hold, b...)
	return nil
}

// endUser writes the held authority with its password, or its bare token,
// masked. Like net/url, the user info ends at the last '@'.
func (s *patStage) endUser() {
	s.toIdle()
	h := s.hold
	at := bytes.LastIndexByte(h, '@')
	if at < 0 {
		s.refeedBytes(h)
		return
	}
	ui := h[:at]
	if c := bytes.IndexByte(ui, ':'); c >= 0 {
		*s.out = append(*s.out, ui[:c+1]...)
		s.maskPart(ui[c+1:])
	} else if s.ssh {
		*s.out = append(*s.out, ui...)
	} else {
		s.maskPart(ui)
	}
	*s.out = append(*s.out, '@')
	s.refeedBytes(h[at+1:])
}

// maskPart writes the mask of a user info part; its fingerprint is that
// of the unescaped value, as for a literal secret.
func (s *patStage) maskPart(p []byte) {
	if len(p) == 0 {
		return
	}
	if s.r.isMask(p) {
		*s.out = append(*s.out, p...)
		return
	}
	if s.mac == nil {
		*s.out = append(*s.out, s.r.mask...)
		return
	}
	s.scratch = appendUnescaped(s.scratch[:0], p)
	s.mac.Reset()
	s.mac.Write(s.scratch)
	*s.out = s.r.appendFingerprint(*s.out, s.mac.Sum(s.sum[:0]))
}

// appendUnescaped appends p with its %XX escapes decoded; a malformed
// escape is kept as it is.
func appendUnescaped(dst, p []byte) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			dst = append(dst, unhex(p[i+1])<<4|unhex(p[i+2]))
			i += 2
			continue
		}
		dst = append(dst, p[i])
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// refeedBytes runs held bytes that turned out not to be secret through the
// idle state, so patterns inside them (a host's "?token=") are still seen.
func (s *patStage) refeedBytes(b []byte) {
	var buf []byte
	if s.refeeding {
		// Only a mask containing "://" gets here; do not overwrite the
		// outer call's bytes.
		buf = append([]byte(nil), b...)
	} else {
		s.refeed = append(s.refeed[:0], b...)
		buf = s.refeed
	}
	s.hold = s.hold[:0]
	was := s.refeeding
	s.refeeding = true
	s.feed(buf)
	s.refeeding = was
}

// pem drops a private key body until its END line, a byte that cannot
// belong to one, or maxPEM bytes.
func (s *patStage) pem(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !pemBodyByte[c] || s.vlen+i >= maxPEM {
			s.valueBytes(b[:i])
			s.endValue()
			s.hold = s.hold[:0]
			s.toIdle()
			return b[i:]
		}
		if s.endLine(c) {
			s.valueBytes(b[:i+1])
			s.endValue()
			*s.out = append(*s.out, s.hold...)
			s.hold = s.hold[:0]
			s.toIdle()
			return b[i+1:]
		}
	}
	s.valueBytes(b)
	return nil
}

// endLine advances the matcher for "-----END <LABEL>-----" and reports
// whether c completed it; s.hold collects the line.
func (s *patStage) endLine(c byte) bool {
	const m = "-----END "
	switch {
	case s.em < len(m):
		if c == m[s.em] {
			s.em++
			s.hold = append(s.hold, c)
			return false
		}
		if s.em == 5 && c == '-' {
			return false // a longer run of dashes: still five
		}
		s.em = 0
		s.hold = s.hold[:0]
		if c == '-' {
			s.em = 1
			s.hold = append(s.hold, c)
		}
		return false
	case s.ed == 0 && ('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ' ') && len(s.hold) < 64:
		s.hold = append(s.hold, c)
		return false
	case c == '-':
		s.ed++
		s.hold = append(s.hold, c)
		return s.ed == 5
	}
	s.em, s.ed = 0, 0
	s.hold = s.hold[:0]
	if c == '-' {
		s.em = 1
		s.hold = append(s.hold, c)
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasSuffixFold reports whether b ends with the lower-case ASCII string k,
// ignoring case.
func hasSuffixFold(b []byte, k string) bool {
	if len(b) < len(k) {
		return false
	}
	b = b[len(b)-len(k):]
	for i := 0; i < len(k); i++ {
		if lower(b[i]) != k[i] {
			return false
		}
	}
	return true
}
