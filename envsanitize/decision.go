package envsanitize

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// A Reason says why a variable was dropped.
type Reason uint8

// The reasons, in the order a Policy checks them, except that the name's
// length (ReasonNameTooLong) is checked between the built-in deny list and
// Policy.Deny (both ReasonDenied).
const (
	// ReasonMalformed: a Filter entry without '='.
	ReasonMalformed Reason = iota + 1
	// ReasonDuplicate: a later entry of Filter's input sets the same
	// name; the last one wins.
	ReasonDuplicate
	// ReasonPyInstaller: replaced or consumed by PyInstaller restoration
	// (Policy.RestorePyInstaller).
	ReasonPyInstaller
	// ReasonDenied: the deny list (built-in or Policy.Deny) matches the
	// name.
	ReasonDenied
	// ReasonNameTooLong: the name exceeds Policy.MaxNameLen.
	ReasonNameTooLong
	// ReasonInvalidName: the name is empty or not [A-Za-z_][A-Za-z0-9_]*
	// (which also rules out '=' and NUL).
	ReasonInvalidName
	// ReasonNotAllowed: no allow pattern matches the name.
	ReasonNotAllowed
	// ReasonNUL: the value contains a NUL byte, which would cut it short
	// in C (and which os/exec refuses).
	ReasonNUL
	// ReasonValueTooLong: the value exceeds Policy.MaxValueLen.
	ReasonValueTooLong
	// ReasonFunction: the value starts with "()", a bash function
	// definition (Shellshock, CVE-2014-6271; sudo's "*=()*").
	ReasonFunction
	// ReasonUnsafeValue: a locale or terminal variable whose value holds
	// '/' or '%', or a TZ that names a file outside the zoneinfo
	// directory (sudo's env_check and tz_is_safe).
	ReasonUnsafeValue
	// ReasonTooMany: the variable would exceed Policy.MaxVars.
	ReasonTooMany
)

// String returns a short name for the reason.
func (r Reason) String() string {
	switch r {
	case ReasonMalformed:
		return "malformed"
	case ReasonDuplicate:
		return "duplicate"
	case ReasonPyInstaller:
		return "pyinstaller"
	case ReasonDenied:
		return "denied"
	case ReasonInvalidName:
		return "invalid name"
	case ReasonNameTooLong:
		return "name too long"
	case ReasonNotAllowed:
		return "not allowed"
	case ReasonNUL:
		return "NUL in value"
	case ReasonValueTooLong:
		return "value too long"
	case ReasonFunction:
		return "function value"
	case ReasonUnsafeValue:
		return "unsafe value"
	case ReasonTooMany:
		return "too many variables"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// A Decision explains why one variable was dropped. It never holds the
// variable's value: values are often secrets.
//
// *Decision is the error type Policy.Check and Env.Set return.
type Decision struct {
	// Index is the entry's position in Filter's input, -1 for Check and
	// Env.Set.
	Index int
	// Name is the variable's name as given, possibly invalid; empty for
	// a ReasonMalformed entry, whose text is not repeated anywhere.
	Name string
	// Reason says why the variable was dropped.
	Reason Reason
	// Rule is the matching deny rule when Reason is ReasonDenied.
	Rule DenyRule
	// Limit is the limit exceeded for ReasonNameTooLong,
	// ReasonValueTooLong and ReasonTooMany; Size is the length found
	// (bytes; for ReasonTooMany, the number of variables already kept).
	Limit, Size int
	// Related is the other name of a PyInstaller pair (LD_LIBRARY_PATH
	// for LD_LIBRARY_PATH_ORIG, and back). When a value restored from an
	// _ORIG entry fails a check, Name is the restored name, Related the
	// _ORIG entry's name, and Index the _ORIG entry's position.
	Related string
}

// maxShownName caps how much of a name a message repeats.
const maxShownName = 64

// shown quotes name for a message, cut at maxShownName bytes.
func shown(name string) string {
	if len(name) > maxShownName {
		return strconv.Quote(name[:maxShownName]) + "..."
	}
	return strconv.Quote(name)
}

// String explains the decision in one sentence, without the value.
func (d Decision) String() string {
	n := shown(d.Name)
	switch d.Reason {
	case ReasonMalformed:
		return fmt.Sprintf("entry %d is not NAME=value (no '=')", d.Index)
	case ReasonDuplicate:
		return n + " is set again later; the last entry wins"
	case ReasonPyInstaller:
		if strings.HasSuffix(d.Name, origSuffix) {
			return n + " is restored as " + shown(d.Related) + " (PyInstaller saved the original value there)"
		}
		return n + " is replaced by the original value PyInstaller saved in " + shown(d.Related)
	case ReasonDenied:
		if d.Rule.Group == GroupPolicy {
			return n + " is denied by the policy's Deny pattern " + strconv.Quote(d.Rule.Pattern)
		}
		return fmt.Sprintf("%s is denied (%s): %s [%s]", n, d.Rule.Group, d.Rule.Why, d.Rule.Source)
	case ReasonInvalidName:
		return n + " is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"
	case ReasonNameTooLong:
		return fmt.Sprintf("%s: name of %d bytes exceeds the limit of %d", n, d.Size, d.Limit)
	case ReasonNotAllowed:
		return n + " matches no allow pattern"
	case ReasonNUL:
		return n + ": value contains a NUL byte"
	case ReasonValueTooLong:
		return fmt.Sprintf("%s: value of %d bytes exceeds the limit of %d", n, d.Size, d.Limit)
	case ReasonFunction:
		return n + `: value starts with "()", a bash function definition (Shellshock)`
	case ReasonUnsafeValue:
		if sshmatch.EqualFold(d.Name, "TZ") {
			return n + ": value is not a safe time zone (a path outside " + zoneinfoDir + ", a '..' element, or a non-printable byte)"
		}
		return n + ": value contains '/' or '%', unsafe for a locale or terminal name"
	case ReasonTooMany:
		return fmt.Sprintf("%s: already %d variables, the limit", n, d.Limit)
	}
	return n + " dropped: " + d.Reason.String()
}

// Error returns "envsanitize: " and String.
func (d *Decision) Error() string {
	return "envsanitize: " + d.String()
}
