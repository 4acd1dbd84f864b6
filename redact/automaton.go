package redact

import "math"

// matchFlag marks a transition whose target state ends at least one
// pattern, so the scan loop needs one sign test per byte and no second
// table lookup.
const matchFlag = math.MinInt32

// automaton is an Aho-Corasick automaton compiled into a dense DFA over
// byte classes: every (state, class) pair has its transition, so scanning
// costs one table load per input byte, whatever the number of patterns.
//
// Bytes that occur in no pattern share class 0, which keeps a row to the
// size of the patterns' alphabet (about 80 classes for base64 and percent
// forms) instead of 256.
//
// It is immutable once built and shared by every reader of a snapshot.
type automaton struct {
	cls    [256]uint8
	stride int32
	// trans[s+class] is the next state, premultiplied by stride, with
	// matchFlag set when that state ends a pattern. State 0 is the root.
	trans []int32
	// depth[s/stride] is the length of the state's string: how many of the
	// most recent bytes may still become part of a match.
	depth []int32
	// mlen[s/stride] is the length of the longest pattern that is a suffix
	// of the state's string (0 for none); only that one matters because the
	// shorter ones ending at the same byte lie inside it.
	mlen []int32
	// msec[s/stride] is the secret index of that longest pattern.
	msec   []int32
	maxLen int

	// skip is a hash set of the first 4 bytes of every pattern, or nil
	// when a pattern is shorter than 4 bytes. Where the 4 bytes ending at
	// some position are not in it, no match can end there or pass through
	// it, so the scan can step over such positions with independent loads
	// instead of the DFA's chain of dependent ones (see engine.scan).
	skip *[skipWords]uint64
}

const (
	skipBits  = 16
	skipWords = 1 << skipBits / 64
)

// skipHash hashes 4 bytes (little endian) to skipBits bits.
func skipHash(g uint32) uint32 { return g * 0x9E3779B1 >> (32 - skipBits) }

// pattern is one byte string to find and the secret it stands for.
type pattern struct {
	text   string
	secret int32
}

// buildAutomaton compiles pats; it returns nil when there is nothing to find.
func buildAutomaton(pats []pattern) *automaton {
	if len(pats) == 0 {
		return nil
	}
	a := &automaton{}
	// Byte classes: 0 for bytes in no pattern, 1.. for the rest.
	var used [256]bool
	for _, p := range pats {
		for i := 0; i < len(p.text); i++ {
			used[p.text[i]] = true
		}
		a.maxLen = max(a.maxLen, len(p.text))
	}
	n := int32(1)
	for b := range 256 {
		if used[b] {
			a.cls[b] = uint8(n)
			n++
		}
	}
	// 256 distinct bytes need 257 classes, which do not fit in a uint8:
	// fold class 0 into the last one in that case by giving byte classes
	// 0..255 directly (no byte is "unused" then).
	if n > 256 {
		for b := range 256 {
			a.cls[b] = uint8(b)
		}
		n = 256
	}
	stride := n
	a.stride = stride

	// Trie. goto edges live in trans (unpremultiplied, 0 = none while
	// building; the root is never the target of a goto edge).
	trans := make([]int32, stride, int(stride)*64)
	depth := []int32{0}
	mlen := []int32{0}
	msec := []int32{-1}
	for _, p := range pats {
		s := int32(0)
		for i := 0; i < len(p.text); i++ {
			c := int32(a.cls[p.text[i]])
			nx := trans[s*stride+c]
			if nx == 0 {
				nx = int32(len(depth))
				trans[s*stride+c] = nx
				trans = append(trans, make([]int32, stride)...)
				depth = append(depth, depth[s]+1)
				mlen = append(mlen, 0)
				msec = append(msec, -1)
			}
			s = nx
		}
		if mlen[s] == 0 {
			mlen[s] = int32(len(p.text))
			msec[s] = p.secret
		}
	}

	// Breadth-first: fail links, then complete every row from the row of
	// the fail state, which is shallower and therefore already complete.
	nstates := int32(len(depth))
	fail := make([]int32, nstates)
	queue := make([]int32, 0, nstates)
	for c := range stride {
		if nx := trans[c]; nx != 0 {
			fail[nx] = 0
			queue = append(queue, nx)
		}
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		f := fail[s]
		if mlen[s] == 0 && mlen[f] != 0 {
			// The state's own string ends no pattern: the longest
			// match ending here is the fail state's.
			mlen[s] = mlen[f]
			msec[s] = msec[f]
		}
		row := trans[s*stride : (s+1)*stride]
		frow := trans[f*stride : (f+1)*stride]
		for c := range stride {
			if nx := row[c]; nx != 0 {
				fail[nx] = frow[c]
				queue = append(queue, nx)
			} else {
				row[c] = frow[c]
			}
		}
	}

	// Premultiply and flag.
	for i, nx := range trans {
		v := nx * stride
		if mlen[nx] != 0 {
			v |= matchFlag
		}
		trans[i] = v
	}
	a.trans = trans
	a.depth = depth
	a.skip = new([skipWords]uint64)
	for _, p := range pats {
		if len(p.text) < 4 {
			a.skip = nil
			break
		}
		h := skipHash(uint32(p.text[0]) | uint32(p.text[1])<<8 | uint32(p.text[2])<<16 | uint32(p.text[3])<<24 /* as the scan reads it */)
		a.skip[h/64] |= 1 << (h % 64)
	}
	a.mlen = mlen
	a.msec = msec
	return a
}
