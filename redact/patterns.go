package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"

	"github.com/dockssh/dockssh/internal/percent"
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
	lookBackLen  = 64
	maxValue     = 16 << 10
	maxScheme    = 32
	maxAuthority = 256
	maxPEM       = 64 << 10
	// maxValueHead is how much of a dropped value is kept to tell whether
	// it is a mask written by an earlier redaction (then it is written
	// back as it was); it must exceed the longest mask.
	maxValueHead = 64
)

// patMode is the state of the pattern stage.
type patMode uint8

const (
	modeIdle      patMode = iota // writing through, looking for anchors
	modeSeparator                // after a key's ':' or '=': spaces, extra separators, backslashes, maybe a quote
	modeValue                    // dropping a value
	modeScheme                   // after "Authorization:": holding the first word
	modeAuthority                // after "://": holding the authority
	modePEM                      // dropping a private key body
)

// valueKind says what ends a value.
type valueKind uint8

const (
	valueUnquoted valueKind = iota // whitespace or one of ,;&"'`)]}<>
	valueQuoted                    // the closing quote or a line break
	valueToken68                   // Basic/Bearer credential: a byte outside RFC 7235 token68
	valueLine                      // other Authorization schemes: the line end or the closing quote
	valueNested                    // starts with '[' or '{': the byte after the bracket that balances it, or a line break
)

// sensitiveKeys returns the names that end a key whose value is masked,
// compared case-insensitively against the end of the key
// ("DOCKER_PASSWORD", "client_secret", "X-Auth-Token",
// "spring.datasource.password", "secretKey"). A name of two words is
// listed with each separator people write between them: none, '_', '-'
// and '.' ("apikey", "api_key", "api-key", "api.key"); case covers
// "apiKey" and "API_KEY".
//
// Deliberately absent: a bare "key" (sort_key, monkey), whose false
// positives would garble ordinary output; "pass", "pwd" and "auth" count
// only as a whole word (see sensitiveWord). URL queries add the exact
// names in url.go.
func sensitiveKeys() []string {
	keys := []string{
		"password", "passwd", "passphrase", "secret", "token",
		"credential", "credentials", "signature", "authorization",
	}
	for _, w := range [...][2]string{{"api", "key"}, {"access", "key"}, {"private", "key"}, {"secret", "key"}} {
		for _, sep := range [...]string{"", "_", "-", "."} {
			keys = append(keys, w[0]+sep+w[1])
		}
	}
	return keys
}

// sensitiveWord reports whether the key name id ends in a short word that
// names a credential only when it stands as a word: "pwd" and "pass" after
// a separator or a lower-case letter or digit ("MYSQL_PWD", "db-pass",
// "dbPass"), never alone (PWD is the working directory, "pass=3" a count)
// nor inside a word (OLDPWD, bypass, compass); "auth" also alone, as in a
// Docker config.json's "auth" (base64 of user:password), but not inside a
// word (oauth, author).
func sensitiveWord(id []byte) bool {
	for _, w := range [...]struct {
		word  string
		alone bool
	}{{"pwd", false}, {"pass", false}, {"auth", true}} {
		if !hasSuffixFold(id, w.word) {
			continue
		}
		i := len(id) - len(w.word) // where the word starts
		if i == 0 {
			if w.alone {
				return true
			}
			continue
		}
		switch p := id[i-1]; {
		case p == '_' || p == '-' || p == '.':
			return true
		case ('a' <= p && p <= 'z' || '0' <= p && p <= '9') && 'A' <= id[i] && id[i] <= 'Z':
			return true // camelCase: dbPass
		}
	}
	return false
}

// sensitiveKey reports whether the key name id names a credential (see
// sensitiveKeys and sensitiveWord), and whether it is Authorization, whose
// value starts with a scheme.
func sensitiveKey(id []byte) (auth, ok bool) {
	if len(id) == 0 {
		return false, false
	}
	for _, k := range keysByLast[lower(id[len(id)-1])] {
		if hasSuffixFold(id, k) {
			return k == "authorization", true
		}
	}
	return false, sensitiveWord(id)
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
	// keysByLast lists sensitiveKeys by their last byte.
	keysByLast = func() (t [256][]string) {
		for _, k := range sensitiveKeys() {
			t[k[len(k)-1]] = append(t[k[len(k)-1]], k)
		}
		return t
	}()
	// keyEnd holds the last bytes of every sensitive key and word, upper
	// and lower case: a key name that ends in another byte is none.
	keyEnd = byteSet(func(c byte) bool {
		return len(keysByLast[lower(c)]) > 0 || in(lower(c), "dsh") // pwd, pass, auth
	})
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

// patStage is the built-in pattern matcher; see the comment above. Its
// input is the literal stage's output: plain bytes through feed, each mask
// of a registered secret as one token. It appends to *out.
//
// Invariants, per mode (a mode's fields are set on entry to it; fields of
// the other modes are stale and never read):
//
//   - Every byte fed is written to *out exactly once, in order, or belongs
//     to a value that is replaced by one mask. Nothing is written twice and
//     nothing is reordered.
//   - modeIdle holds nothing. back holds the last bytes written while idle
//     and is emptied whenever anything else is written (a mask, a masked
//     value), so that looking back from an anchor never reaches across
//     redacted output.
//   - modeSeparator holds only backslashes (sep.backslashes, at most 8):
//     they are written when it is known that they escape a quote, or
//     become the first bytes of an unquoted value.
//   - modeValue and modePEM hold nothing: value bytes are dropped as they
//     arrive, val counts them (at most maxValue, maxPEM) and endValue
//     writes their one mask. modePEM also keeps the END line seen so far
//     in held (at most 64 bytes of label), written after the mask.
//   - modeScheme holds the word after "Authorization:" in held (at most
//     maxScheme bytes); modeAuthority holds the authority after "://" in
//     held (at most maxAuthority bytes, plus masks).
//   - flush leaves no byte held: what was held is written (or, for a value
//     being dropped, masked) as at the end of the input.
type patStage struct {
	r    *Redactor
	out  *[]byte
	mode patMode

	back lookBack
	sep  separator
	val  value

	// held is the bytes of the current pattern not written yet: the first
	// word in modeScheme, the authority in modeAuthority, the candidate
	// END line in modePEM.
	held []byte
	// userScheme reports, in modeAuthority, that the URL's scheme names a
	// user in bare user info (ssh://git@host), not a token.
	userScheme bool
	// pemEnd is modePEM's progress through "-----END <LABEL>-----".
	pemEnd pemEndMatcher

	// refeedBuf holds bytes that turned out not to be secret while they
	// run through the idle state again; refeeding reports that they are.
	refeedBuf []byte
	refeeding bool
	// unescaped is scratch space for a user info part, percent-decoded to
	// take its fingerprint.
	unescaped []byte
	// backslashes holds as many backslashes as a separator may hold, to
	// pass them on as value bytes.
	backslashes [8]byte
}

// lookBack remembers the last lookBackLen bytes written in modeIdle, so
// that an anchor can look at the key or scheme before it even when that
// was written by an earlier call.
type lookBack struct {
	buf [lookBackLen]byte
	n   int // valid bytes in buf
	// joined is scratch space for buf followed by the current chunk.
	joined [2 * lookBackLen]byte
}

// separator is the state between a key's ':' or '=' and its value.
type separator struct {
	// authorization reports that the key was (Proxy-)Authorization, whose
	// value starts with a scheme.
	authorization bool
	backslashes   int // held backslashes: the escapes of a quote, or the value's first bytes
	spaces        int // spaces and tabs skipped (at most 16)
	extra         int // further separator bytes skipped, as in ":=" and "=>" (at most 2)
}

// value is the state of the value being dropped: what ends it, how many
// bytes it has, and enough of it to write its mask.
type value struct {
	kind valueKind
	// closeQuote is the quote that ends a quoted value (or an
	// Authorization value of another scheme), 0 when unquoted.
	closeQuote byte
	// inEscapedString reports that the opening quote was itself escaped
	// (\"...\"): the value ends at the next backslash.
	inEscapedString bool
	// afterBackslash reports, in a quoted value, that the previous byte
	// was a backslash, so the next one cannot close it.
	afterBackslash bool
	// skipSpaces reports that spaces before the value (after an
	// Authorization scheme) are still to be written, not dropped.
	skipSpaces bool
	// depth counts the brackets ('[', '{') a nested value has open, outside
	// its double-quoted strings; inString and afterBackslash follow those
	// strings; closed reports that the brackets balanced, so the next byte
	// ends the value.
	depth    int
	inString bool
	closed   bool

	n       int // bytes dropped so far
	head    [maxValueHead]byte
	headLen int       // bytes of head valid: min(n, maxValueHead)
	mac     hash.Hash // fingerprint of the bytes dropped; nil without Config.Fingerprint
	sum     [sha256.Size]byte
}

// pemEndMatcher follows "-----END <LABEL>-----" through a PEM body.
type pemEndMatcher struct {
	prefix int // bytes of "-----END " matched
	dashes int // closing dashes seen after the label
}

func (s *patStage) init(r *Redactor, out *[]byte) {
	s.r = r
	s.out = out
	s.held = make([]byte, 0, 2*maxAuthority)
	for i := range s.backslashes {
		s.backslashes[i] = '\\'
	}
	if r.fingerprint {
		s.val.mac = hmac.New(sha256.New, r.key)
	}
}

func (s *patStage) feed(b []byte) {
	for len(b) > 0 {
		switch s.mode {
		case modeIdle:
			b = s.idle(b)
		case modeSeparator:
			b = s.separator(b)
		case modeValue:
			b = s.value(b)
		case modeScheme:
			b = s.scheme(b)
		case modeAuthority:
			b = s.authority(b)
		case modePEM:
			b = s.pem(b)
		}
	}
}

// token takes a mask written by the literal stage.
func (s *patStage) token(m []byte) {
	switch s.mode {
	case modeIdle:
		s.back.n = 0
		*s.out = append(*s.out, m...)
	case modeSeparator:
		s.emitBackslashes()
		*s.out = append(*s.out, m...)
		s.startValue(valueUnquoted)
		if s.sep.authorization {
			s.val.kind = valueToken68
		}
	case modeValue:
		s.val.skipSpaces = false
		s.endValue()
		*s.out = append(*s.out, m...)
	case modeScheme:
		if len(s.held) > 0 {
			s.valueBytes(s.held)
			s.held = s.held[:0]
			s.endValue()
		}
		*s.out = append(*s.out, m...)
		s.startValue(valueToken68)
	case modeAuthority:
		s.held = append(s.held, m...)
	case modePEM:
		s.valueBytes(m)
		s.pemEnd = pemEndMatcher{}
		s.held = s.held[:0]
	}
}

// flush ends what is held, as at the end of the input. A value or a PEM
// body being dropped gets its mask now and goes on being dropped.
func (s *patStage) flush() {
	switch s.mode {
	case modeSeparator:
		s.emitBackslashes()
	case modeValue, modePEM:
		s.endValue()
	case modeScheme:
		s.valueBytes(s.held)
		s.held = s.held[:0]
		s.endValue()
		s.toIdle()
	case modeAuthority:
		s.endAuthority()
	}
}

func (s *patStage) toIdle() {
	s.mode = modeIdle
	s.back.n = 0
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
				if identByte[p] && !keyEnd[p] {
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
				s.mode = modeSeparator
				s.sep = separator{authorization: auth}
				s.val.closeQuote = 0
				return b[i+1:]
			}
		case '/':
			if userScheme, ok := s.urlBefore(b, i); ok {
				s.emitIdle(b[:i+1])
				s.mode = modeAuthority
				s.userScheme = userScheme
				s.held = s.held[:0]
				return b[i+1:]
			}
		case '-':
			if s.pemBefore(b, i) {
				s.emitIdle(b[:i+1])
				s.mode = modePEM
				s.pemEnd = pemEndMatcher{}
				s.held = s.held[:0]
				s.val.n, s.val.headLen = 0, 0
				return b[i+1:]
			}
		}
	}
}

// emitIdle writes b and remembers its end for looking back.
func (s *patStage) emitIdle(b []byte) {
	*s.out = append(*s.out, b...)
	lb := &s.back
	if len(b) >= lookBackLen {
		lb.n = copy(lb.buf[:], b[len(b)-lookBackLen:])
		return
	}
	if lb.n+len(b) > lookBackLen {
		drop := lb.n + len(b) - lookBackLen
		copy(lb.buf[:], lb.buf[drop:lb.n])
		lb.n -= drop
	}
	lb.n += copy(lb.buf[lb.n:], b)
}

// before returns up to lookBackLen bytes that precede b[i].
func (s *patStage) before(b []byte, i int) []byte {
	lb := &s.back
	if i >= lookBackLen || lb.n == 0 {
		return b[max(0, i-lookBackLen):i]
	}
	n := copy(lb.joined[:], lb.buf[:lb.n])
	n += copy(lb.joined[n:], b[:i])
	return lb.joined[max(0, n-lookBackLen):n]
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
	if end == 0 || !keyEnd[t[end-1]] {
		return false, false
	}
	for j > 0 && identByte[t[j-1]] {
		j--
	}
	return sensitiveKey(t[j:end])
}

// urlBefore reports whether the '/' at b[i] completes "://", and whether
// the URL's scheme is one whose bare user info is a user name.
func (s *patStage) urlBefore(b []byte, i int) (userScheme, ok bool) {
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

// separator skips the separator's spaces and an opening quote, then
// starts the value.
func (s *patStage) separator(b []byte) []byte {
	sep := &s.sep
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case sep.backslashes == 0 && (c == ' ' || c == '\t') && sep.spaces < 16:
			sep.spaces++
		case sep.backslashes == 0 && (c == '=' || c == '>' || c == ':') && sep.extra < 2:
			sep.extra++
		case c == '\\' && sep.backslashes < len(s.backslashes):
			*s.out = append(*s.out, b[start:i]...)
			start = i + 1
			sep.backslashes++
		case c == '"' || c == '\'' || c == '`':
			*s.out = append(*s.out, b[start:i]...)
			escaped := sep.backslashes > 0
			s.emitBackslashes()
			*s.out = append(*s.out, c)
			if sep.authorization {
				s.mode = modeScheme
				s.held = s.held[:0]
				s.val.n, s.val.headLen = 0, 0
			} else {
				s.startValue(valueQuoted)
			}
			s.val.closeQuote = c
			s.val.inEscapedString = escaped
			return b[i+1:]
		case c == '\r' || c == '\n' || unquotedEnd[c] && c != ' ' && c != '\t':
			*s.out = append(*s.out, b[start:i]...)
			s.emitBackslashes()
			s.toIdle()
			return b[i:]
		default:
			*s.out = append(*s.out, b[start:i]...)
			n := sep.backslashes
			sep.backslashes = 0
			s.val.closeQuote = 0
			s.val.inEscapedString = false
			if sep.authorization {
				s.emitN('\\', n)
				s.mode = modeScheme
				s.held = s.held[:0]
				s.val.n, s.val.headLen = 0, 0
				return b[i:]
			}
			if n == 0 && (c == '[' || c == '{') {
				// A list or a structure, as fmt prints a []byte
				// ("[104 117 ...]") or a struct and JSON writes an
				// array or an object: masked whole, not to its first
				// space.
				s.startValue(valueNested)
				return b[i:]
			}
			s.startValue(valueUnquoted)
			s.valueBytes(s.backslashes[:n])
			return b[i:]
		}
	}
	*s.out = append(*s.out, b[start:]...)
	return nil
}

func (s *patStage) emitBackslashes() {
	s.emitN('\\', s.sep.backslashes)
	s.sep.backslashes = 0
}

func (s *patStage) emitN(c byte, n int) {
	for range n {
		*s.out = append(*s.out, c)
	}
}

// startValue enters modeValue for a value of kind k. The closing quote and
// inEscapedString are the separator's, set before.
func (s *patStage) startValue(k valueKind) {
	s.mode = modeValue
	v := &s.val
	v.kind = k
	v.afterBackslash = false
	v.skipSpaces = false
	v.depth, v.inString, v.closed = 0, false, false
	v.n, v.headLen = 0, 0
	if v.mac != nil {
		v.mac.Reset()
	}
}

// valueBytes takes bytes of the value being masked.
func (s *patStage) valueBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	v := &s.val
	if v.n == 0 && v.mac != nil {
		v.mac.Reset()
	}
	if v.headLen == v.n && v.headLen < maxValueHead {
		v.headLen += copy(v.head[v.headLen:], b)
	}
	v.n += len(b)
	if v.mac != nil {
		v.mac.Write(b)
	}
}

// endValue writes the mask of the value taken so far, or the value itself
// when it is already a mask.
func (s *patStage) endValue() {
	v := &s.val
	if v.n == 0 {
		return
	}
	switch {
	case v.headLen == v.n && s.r.isMask(v.head[:v.headLen]):
		*s.out = append(*s.out, v.head[:v.headLen]...)
	case v.mac != nil:
		*s.out = s.r.appendFingerprint(*s.out, v.mac.Sum(v.sum[:0]))
	default:
		*s.out = append(*s.out, s.r.mask...)
	}
	v.n, v.headLen = 0, 0
}

// value drops the value's bytes until it ends.
func (s *patStage) value(b []byte) []byte {
	i := 0
	if s.val.skipSpaces {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		*s.out = append(*s.out, b[:i]...)
		if i == len(b) {
			return nil
		}
		s.val.skipSpaces = false
	}
	start := i
	for ; i < len(b); i++ {
		if s.val.n+i-start >= maxValue || s.endsValue(b[start:i], b[i]) {
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
// before c in the current chunk, not yet passed to valueBytes.
func (s *patStage) endsValue(seen []byte, c byte) bool {
	v := &s.val
	switch v.kind {
	case valueUnquoted:
		if !unquotedEnd[c] {
			return false
		}
		// A mask written by an earlier redaction may contain a byte that
		// would end a value ("[REDACTED]"): keep it whole.
		return !s.maskContinues(seen, c)
	case valueQuoted:
		if c == '\n' || c == '\r' {
			return true
		}
		if v.inEscapedString {
			// The value is inside an escaped string (\"...\"): its end
			// is the backslash of the closing \".
			return c == '\\' || c == v.closeQuote
		}
		if v.afterBackslash {
			v.afterBackslash = false
			return false
		}
		if c == '\\' {
			v.afterBackslash = true
			return false
		}
		return c == v.closeQuote
	case valueToken68:
		return !token68Byte[c]
	case valueNested:
		return s.endsNested(c)
	default: // valueLine
		return c == '\n' || c == '\r' || v.closeQuote != 0 && c == v.closeQuote
	}
}

// endsNested reports whether c ends a nested value: it is the byte after
// the bracket that balanced the first one, or a line break. The closing
// bracket itself belongs to the value, so "[REDACTED]" after a key is
// recognized as a mask and kept.
func (s *patStage) endsNested(c byte) bool {
	v := &s.val
	switch {
	case v.closed || c == '\n' || c == '\r':
		return true
	case v.inString:
		switch {
		case v.afterBackslash:
			v.afterBackslash = false
		case c == '\\':
			v.afterBackslash = true
		case c == '"':
			v.inString = false
		}
	case c == '"':
		v.inString = true
	case c == '[' || c == '{':
		v.depth++
	case c == ']' || c == '}':
		v.depth--
		v.closed = v.depth <= 0
	}
	return false
}

// maskContinues reports whether the value so far followed by c is still
// the beginning of a mask.
func (s *patStage) maskContinues(seen []byte, c byte) bool {
	v := &s.val
	n := v.n + len(seen) + 1
	if n > maxValueHead {
		return false
	}
	var buf [maxValueHead]byte
	k := copy(buf[:], v.head[:v.headLen])
	if k != v.n {
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
		case schemeByte[c] && len(s.held) < maxScheme:
			s.held = append(s.held, c)
		case c == ' ' && len(s.held) > 0:
			*s.out = append(*s.out, s.held...)
			k := valueLine
			for _, t := range [...]string{"basic", "bearer", "token"} {
				if len(s.held) == len(t) && hasSuffixFold(s.held, t) {
					k = valueToken68
				}
			}
			s.held = s.held[:0]
			s.startValue(k)
			s.val.skipSpaces = true
			return b[i:]
		case token68Byte[c]:
			// Not a scheme: the word is (the start of) the credential.
			s.startValue(valueToken68)
			s.valueBytes(s.held)
			s.held = s.held[:0]
			return b[i:]
		default:
			s.startValue(valueToken68)
			s.valueBytes(s.held)
			s.held = s.held[:0]
			s.endValue()
			s.toIdle()
			return b[i:]
		}
	}
	return nil
}

// authority holds the authority after "://" until it ends.
func (s *patStage) authority(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if authorityEnd[b[i]] || len(s.held)+i >= maxAuthority {
			s.held = append(s.held, b[:i]...)
			s.endAuthority()
			return b[i:]
		}
	}
	s.held = append(s.held, b...)
	return nil
}

// endAuthority writes the held authority with its password, or its bare
// token, masked. Like net/url, the user info ends at the last '@'.
func (s *patStage) endAuthority() {
	s.toIdle()
	h := s.held
	at := bytes.LastIndexByte(h, '@')
	if at < 0 {
		s.refeedBytes(h)
		return
	}
	ui := h[:at]
	if c := bytes.IndexByte(ui, ':'); c >= 0 {
		*s.out = append(*s.out, ui[:c+1]...)
		s.maskPart(ui[c+1:])
	} else if s.userScheme {
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
	mac := s.val.mac
	if mac == nil {
		*s.out = append(*s.out, s.r.mask...)
		return
	}
	s.unescaped = percent.AppendDecode(s.unescaped[:0], p, false)
	mac.Reset()
	mac.Write(s.unescaped)
	*s.out = s.r.appendFingerprint(*s.out, mac.Sum(s.val.sum[:0]))
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
		s.refeedBuf = append(s.refeedBuf[:0], b...)
		buf = s.refeedBuf
	}
	s.held = s.held[:0]
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
		if !pemBodyByte[c] || s.val.n+i >= maxPEM {
			s.valueBytes(b[:i])
			s.endValue()
			s.held = s.held[:0]
			s.toIdle()
			return b[i:]
		}
		if s.endLine(c) {
			s.valueBytes(b[:i+1])
			s.endValue()
			*s.out = append(*s.out, s.held...)
			s.held = s.held[:0]
			s.toIdle()
			return b[i+1:]
		}
	}
	s.valueBytes(b)
	return nil
}

// endLine advances the matcher for "-----END <LABEL>-----" and reports
// whether c completed it; s.held collects the line.
func (s *patStage) endLine(c byte) bool {
	const m = "-----END "
	e := &s.pemEnd
	switch {
	case e.prefix < len(m):
		if c == m[e.prefix] {
			e.prefix++
			s.held = append(s.held, c)
			return false
		}
		if e.prefix == 5 && c == '-' {
			return false // a longer run of dashes: still five
		}
		e.prefix = 0
		s.held = s.held[:0]
		if c == '-' {
			e.prefix = 1
			s.held = append(s.held, c)
		}
		return false
	case e.dashes == 0 && ('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ' ') && len(s.held) < 64:
		s.held = append(s.held, c)
		return false
	case c == '-':
		e.dashes++
		s.held = append(s.held, c)
		return e.dashes == 5
	}
	*e = pemEndMatcher{}
	s.held = s.held[:0]
	if c == '-' {
		e.prefix = 1
		s.held = append(s.held, c)
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
