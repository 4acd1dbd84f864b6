package envsanitize

import (
	"strings"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// validName reports whether name is [A-Za-z_][A-Za-z0-9_]*, the portable
// shell name (POSIX "Name"). Anything else, '=' and NUL included, cannot
// be set or read back reliably by a shell and has no business in an
// environment.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// isFunction reports whether value is a bash function definition. Bash
// before the Shellshock fixes imported any variable whose value began with
// "() {" as a function, running whatever followed it (CVE-2014-6271); sudo
// deletes "*=()*" for the same reason. "()" alone is enough to drop.
func isFunction(value string) bool {
	return strings.HasPrefix(value, "()")
}

// checkedValue reports whether sudo checks name's value for '/' and '%'
// (initial_checkenv_table in plugins/sudoers/env.c): locale and terminal
// names, which libraries turn into file paths (a '/' escapes the locale or
// terminfo directory) or format strings ('%'). TZ has its own check.
func checkedValue(name string) bool {
	switch len(name) {
	case 4:
		return sshmatch.EqualFold(name, "LANG") || sshmatch.EqualFold(name, "TERM")
	case 7:
		return sshmatch.EqualFold(name, "LINGUAS")
	case 8:
		return sshmatch.EqualFold(name, "LANGUAGE")
	case 9:
		return sshmatch.EqualFold(name, "COLORTERM")
	}
	return len(name) >= 3 && sshmatch.EqualFold(name[:3], "LC_")
}

// zoneinfoDir is the one directory a TZ value may name by absolute path,
// sudo's _PATH_ZONEINFO on Linux and the BSDs.
const zoneinfoDir = "/usr/share/zoneinfo"

// pathMax is Linux's PATH_MAX: sudo rejects TZ values this long.
const pathMax = 4096

// tzIsSafe reports whether a TZ value names a time zone rather than an
// arbitrary file, after sudo's tz_is_safe: tzcode reads a value starting
// with ':' or '/' as a path, so an absolute path must lie under
// zoneinfoDir, no element may be "..", every byte must be printable ASCII
// other than space, and the value must be shorter than PATH_MAX.
func tzIsSafe(value string) bool {
	value = strings.TrimPrefix(value, ":")
	if strings.HasPrefix(value, "/") && !strings.HasPrefix(value, zoneinfoDir+"/") {
		return false
	}
	last := byte('/')
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		if last == '/' && c == '.' && strings.HasPrefix(value[i:], "..") &&
			(i+2 == len(value) || value[i+2] == '/') {
			return false
		}
		last = c
	}
	return len(value) < pathMax
}

// safeValue reports whether value passes sudo's env_check for name.
func safeValue(name, value string) bool {
	if len(name) == 2 && sshmatch.EqualFold(name, "TZ") {
		return tzIsSafe(value)
	}
	if checkedValue(name) {
		return !strings.ContainsAny(value, "/%")
	}
	return true
}
