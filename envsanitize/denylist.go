package envsanitize

import "github.com/dockssh/dockssh/internal/sshmatch"

// A Group says why a family of variables is on the deny list.
type Group uint8

// The deny groups. Each DenyRule belongs to one.
const (
	// GroupLoader: the dynamic loader reads these in every dynamically
	// linked program, before main: they load code (LD_PRELOAD, LD_AUDIT,
	// DYLD_INSERT_LIBRARIES) or swap libraries (LD_LIBRARY_PATH, the
	// PyInstaller/docker-compose OpenSSL mismatch).
	GroupLoader Group = iota + 1
	// GroupLibc: the C library reads these at run time to find modules,
	// data files and resolver settings; glibc itself erases them for
	// setuid programs.
	GroupLibc
	// GroupShell: shells read these at start-up or while parsing: a file
	// to source, options to set, characters to split on, commands to run.
	GroupShell
	// GroupFunction: exported shell functions, which bash turns into code
	// in every bash it starts (Shellshock, CVE-2014-6271).
	GroupFunction
	// GroupInterpreter: module search paths and start-up options of
	// language runtimes: a path puts attacker code first on the import
	// path, an option loads it before the program starts.
	GroupInterpreter
	// GroupToolkit: plugin and module directories of GUI and media
	// toolkits, which load shared objects from them; PyInstaller's
	// runtime hooks point several into a bundle that may be gone.
	GroupToolkit
	// GroupTLS: the OpenSSL trust store and configuration: a CA file
	// decides whom a helper trusts, a configuration file can load engines
	// and providers (shared objects).
	GroupTLS
	// GroupTerminal: terminal description databases, parsed by curses
	// from the named path.
	GroupTerminal
	// GroupAuth: authentication configuration of Kerberos, SecurID and
	// AIX, which a program would otherwise read from root-owned files.
	GroupAuth
	// GroupPolicy: a pattern from Policy.Deny, the caller's own additions.
	GroupPolicy
	// GroupTool: what common command-line tools read from the
	// environment to run a command or load code when they start, whoever
	// starts them: git's transport, configuration and templates, less's
	// input preprocessor, vim's start-up commands, the compiler wrappers
	// of cargo and go, npm's configuration.
	GroupTool
	// GroupUserChoice: the pager, editor, browser and password prompt a
	// user picks for other programs to run. In the user's own environment
	// they are the user's choice (see Policy.OwnEnvironment); from an SSH
	// client they choose what a restricted session's programs run (git's
	// pager, crontab -e, ssh's askpass).
	GroupUserChoice
	// GroupSession: what an SSH server says about the session: who
	// logged in, from where, with which forced command, home directory,
	// shell and search path. OpenSSH's sshd sets them after, and over,
	// the client's env requests (do_setup_env in session.c); a client
	// that could set them would choose what runs (PATH, SHELL, HOME's
	// start-up files) or mislead the programs that trust them
	// (SSH_ORIGINAL_COMMAND in ForceCommand wrappers, SSH_CONNECTION).
	// In the user's own environment they are the user's own (see
	// Policy.OwnEnvironment).
	GroupSession
)

// RemoteOnly reports whether the group's rules guard only against
// variables from someone other than the user whose program runs (an SSH
// client): a Policy with OwnEnvironment set lets them pass.
func (g Group) RemoteOnly() bool {
	return g == GroupUserChoice || g == GroupSession
}

// String returns the group's short name, as used in docs/envsanitize.md.
func (g Group) String() string {
	switch g {
	case GroupLoader:
		return "dynamic loader"
	case GroupLibc:
		return "C library"
	case GroupShell:
		return "shell start-up and behaviour"
	case GroupFunction:
		return "exported shell functions"
	case GroupInterpreter:
		return "interpreter paths and options"
	case GroupToolkit:
		return "toolkit module paths"
	case GroupTLS:
		return "TLS trust and OpenSSL configuration"
	case GroupTerminal:
		return "terminal database"
	case GroupAuth:
		return "authentication configuration"
	case GroupPolicy:
		return "Policy.Deny"
	case GroupTool:
		return "tool start-up commands and configuration"
	case GroupUserChoice:
		return "programs the user picks"
	case GroupSession:
		return "session identity"
	}
	return "unknown group"
}

// A DenyRule is one entry of the built-in deny list.
type DenyRule struct {
	// Pattern is a variable name, or a prefix followed by '*' that matches
	// every name starting with it. It matches without regard to ASCII
	// case: Windows treats variable names that way, and denying too much
	// is the safe error.
	Pattern string
	// Group is the family the rule belongs to.
	Group Group
	// Why says what the variable does that makes it unsafe to pass on.
	Why string
	// Source names where the entry comes from: glibc's
	// sysdeps/generic/unsecvars.h, sudo's env_delete default
	// (initial_badenv_table in plugins/sudoers/env.c), OpenSSH's
	// session.c, docker-py, aiodocker, PyInstaller, the documentation of
	// the runtime or tool that reads the variable (git(1), less(1), the
	// .NET runtime, ...), or "dockssh" for other additions of this
	// package. docs/envsanitize.md links each source.
	Source string
}

// Sources, spelled once so that docs and tests agree.
const (
	srcGlibc      = "glibc unsecvars.h"
	srcGlibcOld   = "glibc unsecvars.h (older releases)"
	srcGlibcExtra = "glibc dl-librecon.h EXTRA_UNSECURE_ENVVARS"
	srcGlibcRtld  = "glibc elf/rtld.c"
	srcSudo       = "sudo env_delete"
	srcDockerPy   = "docker-py"
	srcAiodocker  = "aiodocker"
	srcPyInst     = "PyInstaller"
	srcDockssh    = "dockssh"
	srcOpenSSH    = "OpenSSH session.c"
	srcSSH        = "ssh(1)"
	srcBash       = "bash(1)"
	srcPOSIX      = "POSIX"
	srcManDB      = "man-db man(1)"
	srcSystemd    = "systemd(1)"
	srcSudoMan    = "sudo(8)"
	srcBrowser    = "Python webbrowser; xdg-open"
	srcGit        = "git(1)"
	srcLess       = "less(1)"
	srcVim        = "vim starting.txt"
	srcCargo      = "Cargo environment variables"
	srcGo         = "go help environment"
	srcNpm        = "npm config"
	srcNode       = "Node.js CLI"
	srcDotnet     = ".NET runtime docs"
	srcErlang     = "erl(1)"
	srcElixir     = "elixir(1)"
	srcJavac      = "javac(1)"
	srcR          = "R Startup"
	srcJulia      = "Julia environment variables"
)

// exactDeny lists the denied names, sorted as compareFold sorts them (byte
// order of the upper-cased name) so that lookups can binary-search it; a
// test keeps it sorted. Names a prefix rule also covers are listed when a
// source names them, for the more precise reason.
var exactDeny = [...]DenyRule{
	{"AUTHSTATE", GroupAuth, "AIX authentication state, trusted by AIX login programs", srcSudo + " (AIX)"},
	{"BASHOPTS", GroupShell, "bash turns it into initial `shopt -s` options", srcSudo},
	{"BASH_ENV", GroupShell, "file a non-interactive bash sources before running any script", srcSudo},
	{"BROWSER", GroupUserChoice, "web browsers programs run to open a URL", srcBrowser},
	{"CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER", GroupTool, "RUSTC_WORKSPACE_WRAPPER, set as cargo configuration", srcCargo},
	{"CARGO_BUILD_RUSTC_WRAPPER", GroupTool, "RUSTC_WRAPPER, set as cargo configuration", srcCargo},
	{"CDPATH", GroupShell, "search path for `cd`: a script's relative cd lands in another directory", srcSudo},
	{"CORECLR_ENABLE_PROFILING", GroupInterpreter, "makes the .NET runtime load the profiler CORECLR_PROFILER_PATH names (a shared object: code)", srcDotnet},
	{"COR_ENABLE_PROFILING", GroupInterpreter, "makes the .NET Framework load the profiler COR_PROFILER(_PATH) names (code)", srcDotnet},
	{"DISPLAY", GroupSession, "X display sshd sets for X11 forwarding; X clients connect to it", srcOpenSSH},
	{"DLC_ACE", GroupAuth, "SecurID (ACE) client configuration path", srcSudo + " (SecurID)"},
	{"DOTNET_ADDITIONAL_DEPS", GroupInterpreter, "extra deps.json files whose assemblies the .NET host loads (code)", srcDotnet},
	{"DOTNET_ENABLE_PROFILING", GroupInterpreter, ".NET 11 spelling of CORECLR_ENABLE_PROFILING (a profiler: code)", srcDotnet},
	{"DOTNET_STARTUP_HOOKS", GroupInterpreter, "assemblies the .NET runtime loads and runs before Main (code)", srcDotnet},
	{"EDITOR", GroupUserChoice, "editor crontab -e, git, mailx and others run", srcPOSIX},
	{"ELIXIR_ERL_OPTIONS", GroupInterpreter, "flags elixir passes to erl, e.g. -eval (code)", srcElixir},
	{"ENV", GroupShell, "file a POSIX sh or ksh sources at start-up", srcSudo},
	{"ERL_AFLAGS", GroupInterpreter, "flags erl puts before its command line, e.g. -eval, -s (code)", srcErlang},
	{"ERL_FLAGS", GroupInterpreter, "flags erl adds to its command line, e.g. -eval, -s (code)", srcErlang},
	{"ERL_LIBS", GroupInterpreter, "Erlang library directories searched for code before OTP's own", srcErlang},
	{"ERL_ZFLAGS", GroupInterpreter, "flags erl puts after its command line, e.g. -eval, -s (code)", srcErlang},
	{"EXINIT", GroupTool, "ex commands vi and ex run at start-up (:! runs a shell command)", srcVim},
	{"FCEDIT", GroupUserChoice, "editor bash's fc runs", srcBash},
	{"FPATH", GroupShell, "ksh/zsh search path for autoloaded functions", srcSudo},
	{"GCONV_PATH", GroupLibc, "iconv loads gconv modules (shared objects) from it; the pkexec exploit (CVE-2021-4034) used it", srcGlibc},
	{"GDK_PIXBUF_MODULE_FILE", GroupToolkit, "gdk-pixbuf loads the image loader shared objects this cache file names", srcPyInst + " (pyi_rth_gdkpixbuf)"},
	{"GETCONF_DIR", GroupLibc, "directory getconf runs its helper programs from", srcGlibc},
	{"GIO_EXTRA_MODULES", GroupToolkit, "GIO loads module shared objects from these directories", srcDockssh},
	{"GIO_MODULE_DIR", GroupToolkit, "GIO loads module shared objects from this directory", srcPyInst + " (pyi_rth_gio)"},
	{"GIT_ASKPASS", GroupUserChoice, "program git runs to ask for a password", srcGit},
	{"GIT_EDITOR", GroupUserChoice, "editor git runs", srcGit},
	{"GIT_EXEC_PATH", GroupTool, "directory git runs its sub-programs (git-upload-pack, ...) from", srcGit},
	{"GIT_EXTERNAL_DIFF", GroupTool, "command git runs instead of its own diff", srcGit},
	{"GIT_PAGER", GroupUserChoice, "pager git runs", srcGit},
	{"GIT_PROXY_COMMAND", GroupTool, "command git runs to reach a git:// server", srcGit},
	{"GIT_SEQUENCE_EDITOR", GroupUserChoice, "editor git rebase -i runs", srcGit},
	{"GIT_SSH", GroupTool, "program git runs instead of ssh", srcGit},
	{"GIT_SSH_COMMAND", GroupTool, "command git runs instead of ssh", srcGit},
	{"GIT_TEMPLATE_DIR", GroupTool, "templates git init copies into a new repository, hooks (code) included", srcGit},
	{"GLIBC_TUNABLES", GroupLibc, "glibc tunables, parsed by ld.so before main (Looney Tunables, CVE-2023-4911)", srcGlibc},
	{"GLOBIGNORE", GroupShell, "bash drops matching names from every glob expansion", srcSudo},
	{"GOFLAGS", GroupTool, "flags every go command takes, e.g. -toolexec (a command run for every tool)", srcGo},
	{"GST_PLUGIN_PATH", GroupToolkit, "GStreamer loads plugin shared objects from it", srcPyInst + " (pyi_rth_gstreamer)"},
	{"GST_PLUGIN_SYSTEM_PATH", GroupToolkit, "GStreamer's system plugin directories (PyInstaller empties it)", srcPyInst + " (pyi_rth_gstreamer)"},
	{"GST_REGISTRY", GroupToolkit, "GStreamer plugin registry cache, which names the plugins to load", srcPyInst + " (pyi_rth_gstreamer)"},
	{"GTK_EXE_PREFIX", GroupToolkit, "GTK looks for its loadable modules under this prefix", srcPyInst + " (pyi_rth_gtk)"},
	{"GTK_MODULES", GroupToolkit, "GTK loads these modules into every GTK program", srcDockssh},
	{"GTK_PATH", GroupToolkit, "GTK loads modules and engines from these directories", srcPyInst + " (pyi_rth_gtk)"},
	{"GVIMINIT", GroupTool, "ex commands gvim runs at start-up", srcVim},
	{"HOME", GroupSession, "home directory sshd sets; shells source their start-up files from it", srcOpenSSH},
	{"HOSTALIASES", GroupLibc, "resolver reads host aliases from this file", srcGlibc + "; " + srcSudo},
	{"IFS", GroupShell, "shell field separators: changes how every unquoted expansion splits", srcSudo},
	{"JAVA_TOOL_OPTIONS", GroupInterpreter, "JVM options every java picks up, e.g. -javaagent (code)", srcSudo},
	{"JDK_JAVAC_OPTIONS", GroupInterpreter, "options the javac launcher prepends, e.g. -processorpath (annotation processors: code)", srcJavac},
	{"JDK_JAVA_OPTIONS", GroupInterpreter, "options the java launcher prepends, e.g. -javaagent (code)", srcDockssh},
	{"JULIA_DEPOT_PATH", GroupInterpreter, "Julia depots, whose config/startup.jl every julia runs", srcJulia},
	{"JULIA_LOAD_PATH", GroupInterpreter, "Julia package search path", srcJulia},
	{"KRB5CCNAME", GroupSession, "Kerberos credential cache sshd sets for the login", srcOpenSSH},
	{"KRB5_KTNAME", GroupAuth, "Kerberos keytab to use instead of the system one", srcSudo + " (Kerberos 5)"},
	{"KRBCONFDIR", GroupAuth, "Kerberos 4 configuration directory", srcSudo + " (Kerberos 4, older releases)"},
	{"KRBTKFILE", GroupAuth, "Kerberos 4 ticket file", srcSudo + " (Kerberos 4, older releases)"},
	{"LD_AOUT_LIBRARY_PATH", GroupLoader, "library search path of the a.out loader", srcGlibcExtra},
	{"LD_AOUT_PRELOAD", GroupLoader, "objects the a.out loader preloads (code)", srcGlibcExtra},
	{"LD_AT_PLATFORM", GroupLoader, "overrides the platform name ld.so uses to pick library directories", srcGlibcExtra},
	{"LD_AUDIT", GroupLoader, "audit modules ld.so loads into the program (code)", srcGlibc},
	{"LD_BIND_NOT", GroupLoader, "changes how ld.so updates resolved symbols", srcGlibc},
	{"LD_BIND_NOW", GroupLoader, "makes ld.so resolve every symbol at start-up", srcGlibc},
	{"LD_DEBUG", GroupLoader, "ld.so debug output", srcGlibc},
	{"LD_DEBUG_OUTPUT", GroupLoader, "file ld.so writes its debug output to", srcGlibc},
	{"LD_DYNAMIC_WEAK", GroupLoader, "changes how ld.so resolves weak symbols", srcGlibc},
	{"LD_HWCAP_MASK", GroupLoader, "hardware capabilities ld.so uses to pick library directories", srcGlibcOld},
	{"LD_LIBRARY_PATH", GroupLoader, "directories searched for libraries before the system ones: swaps libraries; PyInstaller points it into its bundle (docker/compose#7686)", srcGlibc + "; " + srcSudo + "; " + srcDockerPy + "; " + srcAiodocker},
	{"LD_ORIGIN_PATH", GroupLoader, "directory ld.so substitutes for $ORIGIN", srcGlibc},
	{"LD_PREFER_MAP_32BIT_EXEC", GroupLoader, "changes where ld.so maps executable segments (x86-64)", srcGlibcExtra},
	{"LD_PRELOAD", GroupLoader, "shared objects ld.so loads before all others (code in every program)", srcGlibc},
	{"LD_PROFILE", GroupLoader, "shared object ld.so profiles, writing profile data to disk", srcGlibc},
	{"LD_SHOW_AUXV", GroupLoader, "makes ld.so print the auxiliary vector", srcGlibc},
	{"LD_USE_LOAD_BIAS", GroupLoader, "changes where ld.so loads position-independent executables", srcGlibcOld},
	{"LD_VERBOSE", GroupLoader, "ld.so version output", srcGlibc},
	{"LD_WARN", GroupLoader, "ld.so warnings on unresolved symbols", srcGlibc},
	{"LESS", GroupUserChoice, "options every less takes (--lesskey-src names a key file, whose #env section can set LESSOPEN)", srcLess},
	{"LESSCLOSE", GroupTool, "command less runs after it closes a file (input postprocessor)", srcLess},
	{"LESSEDIT", GroupUserChoice, "editor command line less runs for its v command", srcLess},
	{"LESSOPEN", GroupTool, "command less runs on every file it opens (input preprocessor)", srcLess},
	{"LIBPATH", GroupLoader, "AIX library search path; PyInstaller rewrites it (saving LIBPATH_ORIG)", srcSudo + " (AIX); " + srcPyInst},
	{"LOCALDOMAIN", GroupLibc, "overrides the resolver's search domains", srcGlibc + "; " + srcSudo},
	{"LOCPATH", GroupLibc, "directory libc loads locale data from (parsed binary files)", srcGlibc},
	{"LOGIN", GroupSession, "user name sshd sets (AIX)", srcOpenSSH},
	{"LOGNAME", GroupSession, "user name sshd sets", srcOpenSSH},
	{"MAIL", GroupSession, "mailbox sshd sets", srcOpenSSH},
	{"MALLOC_ARENA_MAX", GroupLibc, "malloc tunable", srcGlibc},
	{"MALLOC_ARENA_TEST", GroupLibc, "malloc tunable", srcGlibc},
	{"MALLOC_CHECK_", GroupLibc, "malloc consistency checking, which writes diagnostics", srcGlibcRtld},
	{"MALLOC_MMAP_MAX_", GroupLibc, "malloc tunable", srcGlibc},
	{"MALLOC_MMAP_THRESHOLD_", GroupLibc, "malloc tunable", srcGlibc},
	{"MALLOC_PERTURB_", GroupLibc, "malloc tunable (fills freed memory)", srcGlibc},
	{"MALLOC_TOP_PAD_", GroupLibc, "malloc tunable", srcGlibc},
	{"MALLOC_TRACE", GroupLibc, "file mtrace writes every allocation to", srcGlibc},
	{"MALLOC_TRIM_THRESHOLD_", GroupLibc, "malloc tunable", srcGlibc},
	{"MANPAGER", GroupUserChoice, "pager man runs", srcManDB},
	{"MYVIMRC", GroupTool, "vimrc path vim keeps when already set; vimrc mappings :source it (code)", srcVim},
	{"NIS_PATH", GroupLibc, "NIS+ name search path", srcGlibc},
	{"NLSPATH", GroupLibc, "where catopen reads message catalogs (format strings) from", srcGlibc + "; " + srcSudo},
	{"NODE_EXTRA_CA_CERTS", GroupTLS, "extra CA certificates node trusts: decides whom a helper trusts", srcNode},
	{"NODE_OPTIONS", GroupInterpreter, "options every node picks up, e.g. --require (code)", srcNode},
	{"NODE_PATH", GroupInterpreter, "extra node module search path", srcNode},
	{"NODE_REPL_EXTERNAL_MODULE", GroupInterpreter, "module node loads instead of its REPL (code)", srcNode},
	{"NODE_TLS_REJECT_UNAUTHORIZED", GroupTLS, "0 turns off node's TLS certificate checks", srcNode},
	{"NULLCMD", GroupShell, "command zsh runs for a redirection without a command", srcSudo},
	{"OPENSSL_CONF", GroupTLS, "OpenSSL configuration file, which can load engines and providers (shared objects)", srcDockssh},
	{"OPENSSL_ENGINES", GroupTLS, "directory OpenSSL loads engine shared objects from", srcDockssh},
	{"OPENSSL_MODULES", GroupTLS, "directory OpenSSL 3 loads provider shared objects from", srcDockssh},
	{"PAGER", GroupUserChoice, "pager man, git, mailx and others run", srcPOSIX},
	{"PANGO_LIBDIR", GroupToolkit, "directory Pango loads its modules from", srcPyInst + " (pyi_rth_gtk)"},
	{"PATH", GroupSession, "command search path sshd sets: decides which program every command name runs", srcOpenSSH},
	{"PATH_LOCALE", GroupLibc, "BSD libc locale directory (parsed locale files)", srcSudo},
	{"PERL5DB", GroupInterpreter, "command perl runs to load its debugger", srcSudo},
	{"PERL5LIB", GroupInterpreter, "perl module search path", srcSudo},
	{"PERL5OPT", GroupInterpreter, "options every perl picks up, e.g. -M (code)", srcSudo},
	{"PERLIO_DEBUG", GroupInterpreter, "file perl writes PerlIO debug output to", srcSudo},
	{"PERLLIB", GroupInterpreter, "perl module search path", srcSudo},
	{"PHPRC", GroupInterpreter, "php.ini location (auto_prepend_file: code)", srcDockssh},
	{"PHP_INI_SCAN_DIR", GroupInterpreter, "extra php .ini directory (auto_prepend_file: code)", srcDockssh},
	{"PROMPT_COMMAND", GroupShell, "command an interactive bash runs before every prompt", srcBash},
	{"PS0", GroupShell, "prompt an interactive bash expands (command substitution included) before every command", srcBash},
	{"PS4", GroupShell, "bash xtrace prefix, expanded (command substitution included) for every traced line", srcSudo},
	{"PYTHONHOME", GroupInterpreter, "location of the Python standard library", srcSudo},
	{"PYTHONINSPECT", GroupInterpreter, "makes python enter interactive mode after the script", srcSudo},
	{"PYTHONPATH", GroupInterpreter, "Python module search path", srcSudo + "; " + srcAiodocker},
	{"PYTHONUSERBASE", GroupInterpreter, "Python per-user site-packages directory", srcSudo},
	{"QML2_IMPORT_PATH", GroupToolkit, "Qt loads QML modules, with their plugins, from it", srcPyInst + " (pyi_rth_pyqt5)"},
	{"QT_PLUGIN_PATH", GroupToolkit, "Qt loads plugin shared objects from it", srcPyInst + " (pyi_rth_pyqt5)"},
	{"READNULLCMD", GroupShell, "command zsh runs for an input redirection without a command", srcSudo},
	{"RESOLV_HOST_CONF", GroupLibc, "resolver host.conf location", srcGlibc},
	{"RES_OPTIONS", GroupLibc, "overrides resolver options", srcGlibc + "; " + srcSudo},
	{"RUBYLIB", GroupInterpreter, "ruby library search path", srcSudo},
	{"RUBYOPT", GroupInterpreter, "options every ruby picks up, e.g. -r (code)", srcSudo},
	{"RUSTC_WORKSPACE_WRAPPER", GroupTool, "command cargo runs around rustc for workspace members", srcCargo},
	{"RUSTC_WRAPPER", GroupTool, "command cargo runs around every rustc", srcCargo},
	{"R_PROFILE", GroupInterpreter, "site profile R runs at start-up (code)", srcR},
	{"R_PROFILE_USER", GroupInterpreter, "user profile R runs at start-up (code)", srcR},
	{"SHELL", GroupSession, "login shell sshd sets; programs run it for shell escapes", srcOpenSSH},
	{"SHELLOPTS", GroupShell, "bash turns it into initial `set -o` options (xtrace with PS4 runs code)", srcSudo},
	{"SHLIB_PATH", GroupLoader, "HP-UX library search path", srcSudo + " (HP-UX)"},
	{"SSH_ASKPASS", GroupUserChoice, "program ssh and ssh-add run to ask for a passphrase", srcSSH},
	{"SSH_ASKPASS_REQUIRE", GroupUserChoice, "force makes ssh run SSH_ASKPASS even where it has a terminal", srcSSH},
	{"SSH_AUTH_SOCK", GroupSession, "agent socket sshd sets for agent forwarding", srcOpenSSH},
	{"SSH_CLIENT", GroupSession, "client address and ports sshd sets; scripts trust it", srcOpenSSH},
	{"SSH_CONNECTION", GroupSession, "client and server addresses sshd sets; scripts trust it", srcOpenSSH},
	{"SSH_ORIGINAL_COMMAND", GroupSession, "the client's command, which sshd sets for a forced command; ForceCommand wrappers trust it", srcOpenSSH},
	{"SSH_TTY", GroupSession, "the session's terminal, which sshd sets", srcOpenSSH},
	{"SSH_TUNNEL", GroupSession, "tunnel interfaces sshd sets for tun forwarding", srcOpenSSH},
	{"SSH_USER_AUTH", GroupSession, "file of the authentication methods used, which sshd sets (ExposeAuthInfo); scripts trust it", srcOpenSSH},
	{"SSL_CERT_DIR", GroupTLS, "OpenSSL CA directory: decides whom a helper trusts", srcAiodocker},
	{"SSL_CERT_FILE", GroupTLS, "OpenSSL CA file: decides whom a helper trusts; PyInstaller points it into its bundle", srcDockerPy + "; " + srcAiodocker + "; " + srcPyInst + " (pyi_rth_certifi)"},
	{"SUDO_ASKPASS", GroupUserChoice, "program sudo -A runs to ask for a password", srcSudoMan},
	{"SUDO_EDITOR", GroupUserChoice, "editor sudoedit runs", srcSudoMan},
	{"SYSTEMD_EDITOR", GroupUserChoice, "editor systemctl edit runs", srcSystemd},
	{"SYSTEMD_PAGER", GroupUserChoice, "pager systemctl and journalctl run", srcSystemd},
	{"TCLLIBPATH", GroupInterpreter, "Tcl package search path", srcDockssh},
	{"TCL_LIBRARY", GroupInterpreter, "where Tcl finds init.tcl, which every interpreter sources", srcPyInst + " (pyi_rth__tkinter)"},
	{"TERMCAP", GroupTerminal, "termcap entry or file curses parses", srcSudo},
	{"TERMINFO", GroupTerminal, "terminfo directory curses reads compiled entries from", srcSudo},
	{"TERMINFO_DIRS", GroupTerminal, "terminfo directories curses searches", srcSudo},
	{"TERMPATH", GroupTerminal, "termcap files curses searches", srcSudo},
	{"TK_LIBRARY", GroupInterpreter, "where Tk finds tk.tcl, which every Tk program sources", srcPyInst + " (pyi_rth__tkinter)"},
	{"TMPDIR", GroupLibc, "directory for temporary files, chosen by whoever sets it", srcGlibc},
	{"TMPPREFIX", GroupShell, "prefix of zsh's temporary files", srcSudo},
	{"TZDIR", GroupLibc, "directory libc reads time zone files from (parsed binary files)", srcGlibc},
	{"USER", GroupSession, "user name sshd sets", srcOpenSSH},
	{"USR_ACE", GroupAuth, "SecurID (ACE) configuration path", srcSudo + " (SecurID)"},
	{"VAR_ACE", GroupAuth, "SecurID (ACE) data directory", srcSudo + " (SecurID)"},
	{"VIM", GroupTool, "directory vim finds its system vimrc and runtime files under (code)", srcVim},
	{"VIMINIT", GroupTool, "ex commands vim runs at start-up instead of a vimrc (:! runs a shell command)", srcVim},
	{"VIMRUNTIME", GroupTool, "directory vim loads its runtime files (plugins, syntax and filetype scripts: code) from", srcVim},
	{"VISUAL", GroupUserChoice, "editor crontab -e, git, mailx and others run before EDITOR", srcPOSIX},
	{"XDG_RUNTIME_DIR", GroupSession, "per-user runtime directory (sockets) sshd sets", srcOpenSSH},
	{"ZDOTDIR", GroupShell, "directory zsh reads .zshenv from, in every zsh", srcSudo},
	{"_JAVA_OPTIONS", GroupInterpreter, "JVM options every java picks up, e.g. -javaagent (code)", srcDockssh},
}

// prefixDeny lists the denied name prefixes, each Pattern ending in '*'.
var prefixDeny = [...]DenyRule{
	{"LD_*", GroupLoader, "every other setting of the ELF dynamic loaders (glibc, musl, Solaris, the BSDs)", srcSudo},
	{"DYLD_*", GroupLoader, "macOS dyld settings: DYLD_INSERT_LIBRARIES loads code, DYLD_LIBRARY_PATH swaps libraries", srcSudo + " (macOS)"},
	{"_RLD*", GroupLoader, "IRIX/Tru64 rld settings (_RLD_LIST loads code)", srcSudo},
	{"LDR_*", GroupLoader, "AIX loader settings (LDR_PRELOAD loads code)", srcSudo + " (AIX)"},
	{"BASH_FUNC_*", GroupFunction, "bash exported function (BASH_FUNC_name%%): code in every bash", srcSudo + " (older releases); " + srcDockssh},
	{"__BASH_FUNC<*", GroupFunction, "Apple bash exported function (__BASH_FUNC<name>%%): code in every bash", srcSudo + " (older releases)"},
	{"PYTHON*", GroupInterpreter, "every CPython setting (PYTHONSTARTUP, PYTHONWARNINGS, PYTHONBREAKPOINT, ...): several import or run code", srcDockssh},
	{"PERL5*", GroupInterpreter, "every perl 5 setting (PERL5SHELL, ...)", srcDockssh},
	{"LUA_INIT*", GroupInterpreter, "Lua code (or @file) every lua runs at start-up", srcDockssh},
	{"LUA_PATH*", GroupInterpreter, "Lua module search path", srcDockssh},
	{"LUA_CPATH*", GroupInterpreter, "Lua C module (shared object) search path", srcDockssh},
	{"KRB5_CONFIG*", GroupAuth, "Kerberos configuration file instead of /etc/krb5.conf", srcSudo + " (Kerberos 5)"},
	{"KRB_CONF*", GroupAuth, "Kerberos 4 configuration files", srcSudo + " (Kerberos 4, older releases)"},
	{"CORECLR_PROFILER*", GroupInterpreter, ".NET profiler to load (CORECLR_PROFILER_PATH, _PATH_64, ...: a shared object, code)", srcDotnet},
	{"COR_PROFILER*", GroupInterpreter, ".NET Framework profiler to load (COR_PROFILER_PATH: a DLL, code)", srcDotnet},
	{"DOTNET_PROFILER*", GroupInterpreter, ".NET 11 spelling of CORECLR_PROFILER* (a profiler: code)", srcDotnet},
	{"GIT_CONFIG*", GroupTool, "git configuration from the environment (GIT_CONFIG_COUNT, _KEY_n, _VALUE_n, GIT_CONFIG_PARAMETERS, GIT_CONFIG_GLOBAL, ...): aliases, core.sshCommand, core.pager and hooks run commands", srcGit},
	{"LESSKEY*", GroupTool, "less key files and their content (LESSKEY, LESSKEYIN, LESSKEY_CONTENT, ...), whose #env section can set LESSOPEN", srcLess},
	{"NPM_CONFIG_*", GroupTool, "npm configuration (npm_config_script_shell, _node_options, _userconfig, ...): commands and code for every npm run script", srcNpm},
}

// DenyList returns a copy of the built-in deny list: exact names first, in
// byte order, then the prefix rules. A Policy never lets a name through
// that a rule matches (except PyInstaller restoration, see
// Policy.RestorePyInstaller).
func DenyList() []DenyRule {
	out := make([]DenyRule, 0, len(exactDeny)+len(prefixDeny))
	out = append(out, exactDeny[:]...)
	return append(out, prefixDeny[:]...)
}

// Denied reports whether the built-in deny list matches name, and the
// matching rule. An exact rule wins over a prefix rule. Case is ignored.
func Denied(name string) (DenyRule, bool) {
	if r := deniedRule(name); r != nil {
		return *r, true
	}
	return DenyRule{}, false
}

// deniedRule returns the rule matching name, or nil. It does not allocate.
func deniedRule(name string) *DenyRule {
	lo, hi := 0, len(exactDeny)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := compareFold(name, exactDeny[mid].Pattern); {
		case c == 0:
			return &exactDeny[mid]
		case c > 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	for i := range prefixDeny {
		p := prefixDeny[i].Pattern
		p = p[:len(p)-1]
		if len(name) >= len(p) && sshmatch.EqualFold(p, name[:len(p)]) {
			return &prefixDeny[i]
		}
	}
	return nil
}

// compareFold compares upper(name) with pattern (already upper case) in
// byte order: -1, 0 or +1.
func compareFold(name, pattern string) int {
	n := min(len(name), len(pattern))
	for i := 0; i < n; i++ {
		a, b := upper(name[i]), pattern[i]
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(name) < len(pattern):
		return -1
	case len(name) > len(pattern):
		return 1
	}
	return 0
}
