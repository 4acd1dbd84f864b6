package envsanitize

// An Env collects variables one at a time under a Policy, as an SSH server
// receives "env" requests, and enforces what a single Check cannot: the
// count limit and duplicates. Its zero value is empty and, with the zero
// Policy, accepts nothing.
//
// An Env is not safe for concurrent use; an SSH session's requests arrive
// in order on one channel.
type Env struct {
	// Policy decides every Set. Changing it affects later calls only: set
	// Policy.PTY when a "pty-req" is granted, then Set("TERM", term) with the
	// terminal type from that request. Variables already set stay.
	Policy Policy

	vars  []string       // NAME=value, in the order names were first set
	index map[string]int // name -> position in vars
}

// Set checks name=value against e.Policy (see Policy.Check) and records it
// if it passes, replacing an earlier value of the same name: the last one
// wins. It returns nil or a *Decision. A refused Set leaves an earlier
// accepted value of the name in place, as sshd ignores a refused request.
// Once e holds Policy.MaxVars distinct names, a new name is refused with
// ReasonTooMany; names already held can still be set again.
func (e *Env) Set(name, value string) error {
	if d, ok := e.Policy.check(name, value, false); !ok {
		err := d // declared here so that only a refusal allocates
		err.Index = -1
		return &err
	}
	if i, ok := e.index[name]; ok {
		e.vars[i] = name + "=" + value
		return nil
	}
	if limit := e.Policy.maxVars(); len(e.vars) >= limit {
		return &Decision{Index: -1, Name: name, Reason: ReasonTooMany, Limit: limit, Size: len(e.vars)}
	}
	if e.index == nil {
		e.index = make(map[string]int)
	}
	e.index[name] = len(e.vars)
	e.vars = append(e.vars, name+"="+value)
	return nil
}

// Environ returns the accepted variables as "NAME=value", in the order
// their names were first set, ready for exec.Cmd.Env or a Docker exec's
// Env. It never returns nil: an empty environment stays empty rather than
// turning into the parent's.
func (e *Env) Environ() []string {
	return append(make([]string, 0, len(e.vars)), e.vars...)
}

// Len returns the number of distinct variables e holds.
func (e *Env) Len() int {
	return len(e.vars)
}
