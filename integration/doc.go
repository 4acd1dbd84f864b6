// Package integration holds dockssh's integration tests: the packages meet a
// real OpenSSH sshd (in a container built by scripts/build-images.sh), the
// real dockerd of this machine and the real OpenSSH client.
//
// Run them with scripts/test.sh, which installs and starts what is missing.
// Without a usable Docker Engine the tests skip loudly, except under CI=true
// or DOCKSSH_REQUIRE_DOCKER=1, where they fail. See docs/testing.md.
package integration
