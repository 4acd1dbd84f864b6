#!/usr/bin/env bash
# A real single-node Kubernetes cluster on 127.0.0.1, for the integration
# tests of the Kubernetes exec backend: etcd (Debian's etcd-server), a private
# containerd with its CRI plugin (Debian's containerd, a second instance next
# to Docker's own), and kube-apiserver and kubelet built from the
# k8s.io/kubernetes module source. There is no scheduler, controller-manager
# or CNI: pods name their node (spec.nodeName: 127.0.0.1) and use
# hostNetwork: true. Nothing listens on anything but 127.0.0.1 and no image is
# ever pulled: pods use imagePullPolicy: Never and the pause container is the
# project's busybox test image.
#
# Usage:
#   scripts/kube-cluster.sh build        install what is missing (apt-get) and
#                                        build kube-apiserver and kubelet once
#                                        per version into the cache; prints the
#                                        cache's bin directory
#   scripts/kube-cluster.sh up DIR IMAGE start the cluster with its state under
#                                        DIR (absent, empty, or an earlier
#                                        cluster's: a healthy one is kept, any
#                                        other torn down first) and IMAGE (a
#                                        local Docker image, the
#                                        dockssh-test/target image) imported;
#                                        writes DIR/kubeconfig (admin) and
#                                        DIR/env (KUBECONFIG, KUBE_SERVER, ...)
#   scripts/kube-cluster.sh down DIR     stop everything started under DIR, even
#                                        half started, unmount and remove DIR
#
# The binaries are cached by version outside the repository, in
# ${XDG_CACHE_HOME:-$HOME/.cache}/dockssh/kube/VERSION/bin (a cold build takes
# about 7 minutes on 2 cores, 1.5 GB of memory and 3 GB of Go build cache).
# DOCKSSH_KUBE_VERSION selects another v1.x.y release (default v1.31.0).
#
# Every process is started from here with its PID recorded in DIR/pids; down
# stops those PIDs, the containerd shims whose command line names DIR's
# containerd socket and whatever is left in the pods' own cgroup, never a
# process found by its name alone: Docker's own containerd and shims run on
# the same machine. A failed up tears down what it started. With
# DOCKSSH_KUBE_OWNER_PID=PID, up also starts a watchdog that runs down once
# PID has exited (the test harness passes its own PID, so a killed test binary
# leaves nothing behind). Must run as root (containerd and kubelet need it).
set -euo pipefail
# shellcheck source=lib/progress.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"
progress_init kube-cluster

version=${DOCKSSH_KUBE_VERSION:-v1.31.0}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dockssh/kube/$version
bin=$cache/bin

# Every port is picked free on 127.0.0.1 at up and written to DIR/env, so
# several clusters (several test binaries) can run side by side.
node=127.0.0.1

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

usage() {
	sed -n '/^# Usage:/,/^# The binaries/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

# ---------------------------------------------------------------- build

# install_missing: installs the Debian packages whose commands are missing.
install_missing() {
	local need=() pair
	for pair in etcd-server:etcd kubernetes-client:kubectl containerd:containerd containerd:ctr runc:runc openssl:openssl curl:curl iproute2:ss; do
		command -v "${pair#*:}" >/dev/null && continue
		case " ${need[*]} " in *" ${pair%%:*} "*) ;; *) need+=("${pair%%:*}") ;; esac
	done
	[ ${#need[@]} -gt 0 ] || return 0
	command -v apt-get >/dev/null || fail "missing ${need[*]} and no apt-get to install them"
	[ "$(id -u)" -eq 0 ] || fail "missing ${need[*]}; install them as root: apt-get install -y ${need[*]}"
	step "apt-get update" apt-get update -q
	step "installing ${need[*]} (apt-get)" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${need[@]}"
	for pair in etcd-server:etcd kubernetes-client:kubectl containerd:ctr; do
		command -v "${pair#*:}" >/dev/null || fail "${pair%%:*} is installed but ${pair#*:} is still not on PATH"
	done
}

# binaries_ok reports whether both cached binaries exist and report $version.
binaries_ok() {
	[ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubelet" ] &&
		"$bin/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $version" &&
		"$bin/kubelet" --version 2>/dev/null | grep -qx "Kubernetes $version"
}

# prepare_source DIR: the k8s.io/kubernetes module source in DIR, made
# buildable on its own. The module zip has no staging/ tree (nested modules are
# left out of module zips) and no usable vendor/, so each
# k8s.io/X => ./staging/src/k8s.io/X replacement points at the published
# staging module of the matching v0 version instead.
prepare_source() {
	local dir=$1 mod
	mod=$(cd "$dir/.." && GOWORK=off GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$mod" ] || [ ! -f "$mod/go.mod" ]; then
		echo "go mod download gave no module directory"
		return 1
	fi
	cp -R "$mod/." "$dir/" && chmod -R u+w "$dir" || return 1
	rm -rf "$dir/go.work" "$dir/go.work.sum" "$dir/vendor"
	sed -i -E "s#^([[:space:]]*)(k8s\\.io/[a-z0-9-]+) => \\./staging/src/k8s\\.io/[a-z0-9-]+\$#\\1\\2 => \\2 v0.${version#v1.}#" "$dir/go.mod"
	if grep -q '=> ./staging' "$dir/go.mod"; then
		echo "go.mod still replaces a module by a staging directory:"
		grep '=> ./staging' "$dir/go.mod"
		return 1
	fi
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod download)
}

# build_one SRC NAME OUT: builds cmd/NAME with the version stamped in (without
# it the server reports v0.0.0-master+$Format:%H$, which clients cannot parse).
build_one() {
	local src=$1 name=$2 out=$3 minor
	minor=${version#v1.}
	minor=${minor%%.*}
	(cd "$src" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 nice -n 10 go build -trimpath \
		-ldflags "-s -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
		-o "$out/$name" "./cmd/$name")
}

cmd_build() {
	install_missing
	command -v go >/dev/null || fail "Go is not installed (https://go.dev/doc/install)"
	command -v flock >/dev/null || fail "flock (util-linux) is missing"
	mkdir -p "$cache"
	# Two test binaries may ask at once: the second waits for the first build.
	exec 9>"$cache/.build.lock"
	flock 9
	if binaries_ok; then
		echo "$bin"
		return 0
	fi
	say "building kube-apiserver and kubelet $version once into $bin (about 7 minutes on 2 cores)"
	local work
	work=$(mktemp -d "$cache/.build.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "rm -rf '$work'" EXIT
	mkdir -p "$work/src" "$work/bin"
	step "downloading the k8s.io/kubernetes $version module and its dependencies" prepare_source "$work/src"
	step "building kube-apiserver $version" build_one "$work/src" kube-apiserver "$work/bin"
	step "building kubelet $version" build_one "$work/src" kubelet "$work/bin"
	rm -rf "$bin"
	mv "$work/bin" "$bin"
	binaries_ok || fail "the built binaries do not report Kubernetes $version"
	echo "$bin"
}


# ---------------------------------------------------------------- up

# The file that marks DIR as a cluster's state directory: down removes only a
# directory that carries it.
marker=.dockssh-kube-cluster

# free_port: a port on 127.0.0.1 that nothing listens on and that this run has
# not handed out yet (the daemons bind them moments later). 20000-31999 stays
# below Linux's default ephemeral range (32768-60999), so an outgoing
# connection does not take it meanwhile.
taken_ports=" "
free_port() {
	local p listening
	listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ')
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		case " $listening $taken_ports " in *" $p "*) continue ;; esac
		taken_ports="$taken_ports$p "
		echo "$p"
		return 0
	done
	fail "no free port found on 127.0.0.1"
}

# make_pki DIR: a CA, the API server's certificate (127.0.0.1 and localhost), the
# admin client certificate (O=system:masters), kubelet's client certificate
# and the service-account key pair, all with openssl.
make_pki() {
	local d=$1/pki
	mkdir -p "$d" || return 1
	(cd "$d" && make_pki_here)
}
make_pki_here() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 -subj "/CN=dockssh-kube-ca" || return 1
	# sign NAME SUBJECT EXTENSIONS
	sign() {
		openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" &&
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
				-extfile <(printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$3") \
				-out "$1.crt" && rm -f "$1.csr"
	}
	sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost" || return 1
	sign admin "/O=system:masters/CN=dockssh-admin" "extendedKeyUsage=clientAuth" || return 1
	sign kubelet "/O=system:nodes/CN=system:node:$node" "extendedKeyUsage=clientAuth" || return 1
	openssl genrsa -out sa.key 2048 && openssl rsa -in sa.key -pubout -out sa.pub || return 1
	chmod 600 ./*.key
}

# kubeconfig FILE USER: a kubeconfig for the API server with USER's certificate.
kubeconfig() {
	cat >"$1" <<-YAML
		apiVersion: v1
		kind: Config
		clusters:
		- name: dockssh
		  cluster:
		    server: https://127.0.0.1:$api_port
		    certificate-authority: $dir/pki/ca.crt
		users:
		- name: $2
		  user:
		    client-certificate: $dir/pki/$2.crt
		    client-key: $dir/pki/$2.key
		contexts:
		- name: dockssh
		  context: {cluster: dockssh, user: $2, namespace: default}
		current-context: dockssh
	YAML
}

# start NAME COMMAND...: starts a daemon in its own session with its output in
# DIR/logs/NAME.log and records its PID in DIR/pids.
start() {
	local name=$1
	shift
	setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
	echo "$name $!" >>"$dir/pids"
}

# running PID: reports whether process PID runs. A daemon that died is
# reparented and may stay a zombie for a while, which kill -0 still finds.
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# alive NAME: reports whether the daemon NAME recorded in DIR/pids runs.
alive() {
	local pid
	pid=$(awk -v n="$1" '$1 == n {print $2}' "$dir/pids" 2>/dev/null)
	[ -n "$pid" ] && running "$pid"
}

# wait_for WHAT NAME SECONDS COMMAND...: polls COMMAND until it succeeds;
# fails early when daemon NAME has exited.
wait_for() {
	local what=$1 name=$2 secs=$3 start=$SECONDS
	shift 3
	printf '%s: waiting for %s ... ' "$progress_name" "$what" >&2
	until "$@" >/dev/null 2>&1; do
		if ! alive "$name"; then
			echo "FAILED: $name exited" >&2
			show_log "$name"
			return 1
		fi
		if [ $((SECONDS - start)) -ge "$secs" ]; then
			echo "FAILED: not within $secs s" >&2
			show_log "$name"
			return 1
		fi
		sleep 0.2
	done
	echo "done ($((SECONDS - start)) s)" >&2
}

show_log() {
	echo "$progress_name: last lines of $dir/logs/$1.log:" >&2
	tail -n 25 "$dir/logs/$1.log" 2>/dev/null | sed 's/^/    /' >&2
}

api_curl() {
	curl -fsS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
		"https://127.0.0.1:$api_port$1"
}

kc() { kubectl --kubeconfig "$dir/kubeconfig" --request-timeout=20s "$@"; }

write_configs() {
	local ctr_dir=$dir/containerd
	mkdir -p "$ctr_dir" "$dir/cni/bin" "$dir/cni/net.d" "$dir/manifests" "$dir/kubelet" "$dir/pod-logs" "$dir/volume-plugins"
	# A second containerd with its own root, state, sockets and runc root,
	# so nothing is shared with Docker's containerd. restrict_oom_score_adj:
	# these machines lack CAP_SYS_RESOURCE, and without it sandbox creation
	# fails ("can't get final child's PID from pipe: EOF").
	cat >"$ctr_dir/config.toml" <<-TOML
		version = 2
		root = "$ctr_dir/root"
		state = "$ctr_dir/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
		[grpc]
		  address = "$ctr_dir/containerd.sock"
		[ttrpc]
		  address = "$ctr_dir/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$ctr_dir/opt"
		# Unused, but the tasks service needs it loaded (containerd 1.6).
		[plugins."io.containerd.runtime.v1.linux"]
		  runtime_root = "$dir/runc-v1"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$sandbox_image"
		  restrict_oom_score_adj = true
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  enable_selinux = false
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		        Root = "$dir/runc"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$dir/cni/bin"
		    conf_dir = "$dir/cni/net.d"
	TOML
	# Every pod runs under the cgroup $cgroup_root, created here and removed
	# by down, so two clusters never share a cgroup and down can find every
	# process a pod left behind.
	cat >"$dir/kubelet/config.yaml" <<-YAML
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		address: 127.0.0.1
		port: $kubelet_port
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		healthzPort: $kubelet_healthz_port
		staticPodPath: $dir/manifests
		podLogsDir: $dir/pod-logs
		volumePluginDir: $dir/volume-plugins
		cgroupDriver: cgroupfs
		cgroupRoot: $cgroup_root
		containerRuntimeEndpoint: unix://$ctr_dir/containerd.sock
		imageServiceEndpoint: unix://$ctr_dir/containerd.sock
		authentication:
		  anonymous: {enabled: true}
		  webhook: {enabled: false}
		authorization: {mode: AlwaysAllow}
		failSwapOn: false
		makeIPTablesUtilChains: false
		serializeImagePulls: false
		fileCheckFrequency: 2s
		syncFrequency: 5s
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
	YAML
}

# cgroup_dirs: the cgroup v1 hierarchies (or the v2 one) where $cgroup_root
# lives.
cgroup_dirs() {
	awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo
}

make_cgroups() {
	local m
	for m in $(cgroup_dirs); do
		mkdir -p "$m$cgroup_root" || return 1
		# A new cpuset cgroup starts with no CPUs or memory nodes.
		if [ -f "$m/cpuset.cpus" ]; then
			cat "$m/cpuset.cpus" >"$m$cgroup_root/cpuset.cpus" &&
				cat "$m/cpuset.mems" >"$m$cgroup_root/cpuset.mems" || return 1
		fi
	done
}

up_failed() {
	local rc=$?
	[ "$rc" -ne 0 ] || return 0
	say "FAILED: tearing down $dir"
	cmd_down "$dir" || true
	exit "$rc"
}

cmd_up() {
	dir=$1
	local image=$2 start_time=$SECONDS
	[ "$(id -u)" -eq 0 ] || fail "must run as root (containerd and kubelet need it)"
	case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
	if [ -f "$dir/$marker" ] && [ -f "$dir/env" ] && alive kubelet && alive kube-apiserver && alive containerd && alive etcd; then
		# shellcheck disable=SC1091
		. "$dir/env"
		if api_curl /readyz >/dev/null 2>&1; then
			say "already up in $dir"
			return 0
		fi
	fi
	if [ -e "$dir" ]; then
		[ -f "$dir/$marker" ] || [ -z "$(ls -A "$dir")" ] || fail "$dir exists and is not a cluster directory made by this script"
		[ -f "$dir/$marker" ] && cmd_down "$dir"
	fi
	# containerd's socket path must fit in sockaddr_un (108 bytes).
	[ ${#dir} -le 70 ] || fail "$dir is too long for containerd's socket path; use a shorter directory"
	binaries_ok || fail "kube-apiserver and kubelet $version are not built; run: $0 build"
	local b
	for b in etcd containerd ctr kubectl openssl curl ss setsid docker; do
		command -v "$b" >/dev/null || fail "$b is missing; run: $0 build"
	done
	docker image inspect "$image" >/dev/null 2>&1 || fail "the image $image is not in the local Docker engine"
	mkdir -p "$dir/logs"
	touch "$dir/$marker"
	: >"$dir/pids"
	# From here on a failure tears down what was started.
	trap up_failed EXIT

	etcd_port=$(free_port)
	etcd_peer_port=$(free_port)
	api_port=$(free_port)
	kubelet_port=$(free_port)
	kubelet_healthz_port=$(free_port)
	cgroup_root=$(basename "$dir" | tr -c 'a-zA-Z0-9_.\n-' _)
	cgroup_root=/dockssh-kube-${cgroup_root#dockssh-kube-}
	# docker save names an image docker.io/NAME:TAG once imported.
	case $image in */*/*) sandbox_image=$image ;; */*) sandbox_image=docker.io/$image ;; *) sandbox_image=docker.io/library/$image ;; esac
	cat >"$dir/env" <<-ENV
		KUBECONFIG=$dir/kubeconfig
		KUBE_SERVER=https://127.0.0.1:$api_port
		KUBE_NODE=$node
		KUBE_IMAGE=$sandbox_image
		KUBE_CGROUP_ROOT=$cgroup_root
		KUBE_CONTAINERD_SOCK=$dir/containerd/containerd.sock
		etcd_port=$etcd_port
		api_port=$api_port
		kubelet_port=$kubelet_port
		kubelet_healthz_port=$kubelet_healthz_port
		cgroup_root=$cgroup_root
	ENV
	step "generating TLS material with openssl" make_pki "$dir"
	kubeconfig "$dir/kubeconfig" admin
	kubeconfig "$dir/kubelet.kubeconfig" kubelet
	write_configs
	step "creating the cgroup $cgroup_root" make_cgroups

	if [ -n "${DOCKSSH_KUBE_OWNER_PID:-}" ]; then
		# Tears the cluster down when the owner (a test binary) exits, even
		# when it is killed before it can run down itself.
		start watchdog bash "${BASH_SOURCE[0]}" watch "$dir" "$DOCKSSH_KUBE_OWNER_PID"
	fi

	start etcd etcd --name dockssh --data-dir "$dir/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster "dockssh=http://127.0.0.1:$etcd_peer_port" --initial-cluster-state new
	start containerd containerd --config "$dir/containerd/config.toml"
	wait_for "etcd on 127.0.0.1:$etcd_port" etcd 30 curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"

	start kube-apiserver "$bin/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--cert-dir "$dir/pki" \
		--tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
		--client-ca-file "$dir/pki/ca.crt" \
		--service-account-issuer "https://127.0.0.1:$api_port" \
		--service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
		--authorization-mode AlwaysAllow \
		--kubelet-preferred-address-types Hostname \
		--endpoint-reconciler-type none \
		--profiling=false

	wait_for "containerd on $dir/containerd/containerd.sock" containerd 30 ctr --address "$dir/containerd/containerd.sock" version
	import_image() { docker save "$image" | ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import -; }
	step "importing $image into the private containerd" import_image

	wait_for "kube-apiserver /readyz on 127.0.0.1:$api_port" kube-apiserver 90 api_curl /readyz

	start kubelet "$bin/kubelet" --config "$dir/kubelet/config.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
		--root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" --hostname-override "$node" -v=1

	# Without a controller-manager nothing makes a namespace's default
	# service account or the kube-root-ca.crt config map that the
	# ServiceAccount admission plugin's token volume needs.
	kc create serviceaccount default >/dev/null 2>&1 || kc get serviceaccount default >/dev/null ||
		fail "cannot create the default service account"
	kc create configmap kube-root-ca.crt --from-file "ca.crt=$dir/pki/ca.crt" >/dev/null 2>&1 ||
		kc get configmap kube-root-ca.crt >/dev/null || fail "cannot create the kube-root-ca.crt config map"

	wait_for "node $node to register" kubelet 90 kc get node "$node"
	trap - EXIT
	say "up in $((SECONDS - start_time)) s: KUBECONFIG=$dir/kubeconfig (server https://127.0.0.1:$api_port, node $node)"
}

# ---------------------------------------------------------------- down

# owned PID: reports whether process PID runs with DIR in its command line
# (a recorded PID may have been reused by an unrelated process since).
owned() {
	[ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$dir"
}

# stop_pid NAME PID: SIGTERM, up to 10 s, then SIGKILL.
stop_pid() {
	local name=$1 pid=$2 i
	owned "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		running "$pid" || { say "stopped $name (pid $pid)"; return 0; }
		[ "$i" -eq 50 ] || sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
	say "killed $name (pid $pid) after 10 s"
}

stop_recorded() {
	local pid
	pid=$(awk -v n="$1" '$1 == n {print $2}' "$dir/pids" 2>/dev/null)
	[ -z "$pid" ] || stop_pid "$1" "$pid"
}

# pids_in_cgroups: every process in the cluster's cgroup tree.
pids_in_cgroups() {
	local m
	[ -n "${cgroup_root:-}" ] || return 0
	for m in $(cgroup_dirs); do
		[ -d "$m$cgroup_root" ] && find "$m$cgroup_root" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# other_kubelet_runs reports whether any kubelet but this cluster's runs.
other_kubelet_runs() {
	local p
	for p in $(pgrep -x kubelet || true); do
		owned "$p" || return 0
	done
	return 1
}

cmd_down() {
	dir=$1
	case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
	if [ ! -e "$dir" ]; then
		say "nothing to tear down in $dir"
		return 0
	fi
	if [ ! -f "$dir/$marker" ] && [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ]; then
		rmdir "$dir"
		say "nothing to tear down in $dir (empty; removed)"
		return 0
	fi
	[ -f "$dir/$marker" ] || fail "$dir is not a cluster directory made by this script (no $marker); not touching it"
	if [ -f "$dir/env" ]; then
		# shellcheck disable=SC1091
		. "$dir/env"
	fi
	local sock=$dir/containerd/containerd.sock pid id m i
	# The watchdog runs down itself when its owner exits; any other caller
	# stops it first.
	pid=$(awk '$1 == "watchdog" {print $2}' "$dir/pids" 2>/dev/null)
	if [ -n "$pid" ] && [ "$pid" != "$$" ] && [ "$pid" != "$PPID" ]; then stop_pid watchdog "$pid"; fi

	rm -f "$dir"/manifests/* 2>/dev/null || true
	stop_recorded kubelet
	stop_recorded kube-apiserver
	if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
		for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$sock" -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
			ctr --address "$sock" -n k8s.io containers rm "$id" >/dev/null 2>&1 || true
		done
		say "removed the containerd tasks and containers"
	elif [ -e "$sock" ]; then
		say "containerd does not answer on $sock: its shims and the cgroup ${cgroup_root:-} are cleaned up below"
	fi
	stop_recorded containerd
	# Shims outlive containerd; each names the private socket after -address.
	# A killed shim leaves its socket behind, at the path containerd 1.6
	# derives from the address, namespace and ID (runtime/v2/shim
	# SocketAddress: /run/containerd/s/ + sha256 of ADDRESS/NS/ID).
	for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |\$)" || true); do
		owned "$pid" || continue
		local args ns="" cid=""
		args=$(tr '\0' '\n' <"/proc/$pid/cmdline")
		ns=$(echo "$args" | sed -n '/^-namespace$/{n;p;q}')
		cid=$(echo "$args" | sed -n '/^-id$/{n;p;q}')
		kill -KILL "$pid" 2>/dev/null && say "killed containerd-shim-runc-v2 (pid $pid)"
		if [ -n "$ns" ] && [ -n "$cid" ]; then
			rm -f "/run/containerd/s/$(printf '%s' "$sock/$ns/$cid" | sha256sum | cut -d' ' -f1)"
		fi
	done
	# Anything a pod left in the cluster's cgroups.
	for i in 1 2 3; do
		pid=$(pids_in_cgroups)
		[ -n "$pid" ] || break
		say "killing processes left in $cgroup_root: $(echo "$pid" | tr '\n' ' ')"
		# shellcheck disable=SC2086
		kill -KILL $pid 2>/dev/null || true
		sleep 0.5
	done
	stop_recorded etcd
	# Mounts under DIR (container root filesystems, shm, kubelet volumes),
	# deepest first.
	for i in 1 2 3; do
		m=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
		[ -n "$m" ] || break
		echo "$m" | while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; done
	done
	m=$(awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)
	[ -z "$m" ] || fail "still mounted under $dir: $m"
	# The cgroups, deepest first.
	if [ -n "${cgroup_root:-}" ]; then
		for m in $(cgroup_dirs); do
			[ -d "$m$cgroup_root" ] || continue
			find "$m$cgroup_root" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[ ! -d "$m$cgroup_root" ] || fail "cannot remove the cgroup $m$cgroup_root"
		done
	fi
	# kubelet links container logs into /var/log/containers (a fixed path).
	if [ -d /var/log/containers ]; then
		find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null || true
		rmdir /var/log/containers 2>/dev/null || true
	fi
	# kubelet's device manager listens on a fixed path, whatever its root
	# directory: remove it unless another kubelet runs.
	if [ -S /var/lib/kubelet/device-plugins/kubelet.sock ] && ! other_kubelet_runs; then
		rm -f /var/lib/kubelet/device-plugins/kubelet.sock
		rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
	fi
	rm -rf "$dir"
	say "down: $dir removed"
}

# watch DIR PID: runs down DIR once PID has exited.
cmd_watch() {
	dir=$1
	local owner=$2
	while running "$owner" && [ -d "$dir" ]; do sleep 1; done
	[ -d "$dir" ] || exit 0
	say "owner $owner exited; tearing down $dir"
	cmd_down "$dir"
}

case ${1:-} in
build) [ $# -eq 1 ] || usage; cmd_build ;;
up) [ $# -eq 3 ] || usage; cmd_up "$2" "$3" ;;
down) [ $# -eq 2 ] || usage; cmd_down "$2" ;;
watch) [ $# -eq 3 ] || usage; cmd_watch "$2" "$3" ;;
*) usage ;;
esac
