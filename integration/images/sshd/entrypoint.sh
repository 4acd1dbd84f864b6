#!/bin/bash
# Configures sshd from the environment, then runs it in the foreground.
#
#   AUTHORIZED_KEYS                   authorized_keys content for root
#   SSHD_MAX_SESSIONS                 MaxSessions (OpenSSH default 10)
#   SSHD_ALLOW_STREAMLOCAL_FORWARDING AllowStreamLocalForwarding (yes|no|all|local|remote)
#   SSHD_REGENERATE_HOST_KEYS=1       new host keys on every start
#   SSHD_EXTRA_CONFIG                 more sshd_config lines, verbatim
set -euo pipefail

if [ "${SSHD_REGENERATE_HOST_KEYS:-0}" = 1 ]; then
	rm -f /etc/ssh/ssh_host_*
	ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
	ssh-keygen -q -t ecdsa -b 256 -N '' -f /etc/ssh/ssh_host_ecdsa_key
	ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key
fi

mkdir -p /run/sshd /root/.ssh /etc/ssh/sshd_config.d
chmod 700 /root/.ssh
printf '%s\n' "${AUTHORIZED_KEYS:-}" >/root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys

{
	[ -z "${SSHD_MAX_SESSIONS:-}" ] || echo "MaxSessions ${SSHD_MAX_SESSIONS}"
	[ -z "${SSHD_ALLOW_STREAMLOCAL_FORWARDING:-}" ] || echo "AllowStreamLocalForwarding ${SSHD_ALLOW_STREAMLOCAL_FORWARDING}"
	[ -z "${SSHD_EXTRA_CONFIG:-}" ] || printf '%s\n' "${SSHD_EXTRA_CONFIG}"
} >/etc/ssh/sshd_config.d/runtime.conf

/usr/sbin/sshd -t
exec /usr/sbin/sshd -D -e
