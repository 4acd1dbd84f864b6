package envsanitize

// PyInstaller's bootloader prepends its bundle directory to the library
// search path and, if the variable was set, saves the user's value under
// the same name plus origSuffix: LD_LIBRARY_PATH on Linux and the BSDs,
// LIBPATH on AIX ("The Bootstrap Process in Detail", PyInstaller's
// advanced topics). Programs the bundle starts then load the bundle's
// libraries: the OpenSSL mismatch of docker/compose#7686.
//
// The list is closed on purpose: restoring X from X_ORIG for any X would
// let whoever writes the environment set any denied name.
var pyInstallerVars = [...]string{"LD_LIBRARY_PATH", "LIBPATH"}

const origSuffix = "_ORIG"

// pyInstallerVar returns the index of name in pyInstallerVars, or -1.
func pyInstallerVar(name string) int {
	for k, n := range pyInstallerVars {
		if name == n {
			return k
		}
	}
	return -1
}

// pyInstallerOrig returns k if name is pyInstallerVars[k]+origSuffix, or -1.
func pyInstallerOrig(name string) int {
	for k, n := range pyInstallerVars {
		if len(name) == len(n)+len(origSuffix) && name[:len(n)] == n && name[len(n):] == origSuffix {
			return k
		}
	}
	return -1
}
