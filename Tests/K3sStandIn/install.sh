# K3s STAND-IN for provision's tests (Tests/K3sStandIn): NOT K3s's install script. It honours the same environment.
# shellcheck shell=sh
#
# Like get.k3s.io's script it reads INSTALL_K3S_VERSION, INSTALL_K3S_EXEC (or arguments; the command
# defaults to server, or agent when K3S_URL is set), INSTALL_K3S_SKIP_DOWNLOAD (true|binary: the
# binary must already be in INSTALL_K3S_BIN_DIR, default /usr/local/bin), K3S_URL (https:// only),
# K3S_TOKEN / K3S_TOKEN_FILE (required with K3S_URL); it refuses to run without a service manager,
# writes the K3S_* variables to the service's env file (0600), a unit (k3s or k3s-agent: an OpenRC script when
# /sbin/openrc-run exists, else a systemd Type=notify unit with /etc/systemd/system/<unit>.service.env),
# and decides on the restart exactly as K3s's script does: the SHA-256 of binary, unit and env file
# is taken once before the script changes anything and again at its end; equal (and no
# INSTALL_K3S_FORCE_RESTART=true) prints "No change detected so skipping service start" and starts
# nothing, without asking whether the service runs (so a binary swapped in before the script, the
# air-gap upgrade, is not started, and a service stopped by hand stays stopped). Otherwise it
# (re)starts the service and waits for it like a Type=notify unit: for ever, when an agent cannot join.
# Node-local fault (one per line in /var/lib/k3s-standin/faults on that node): `keep-old-process`:
# the service manager's restart leaves a running K3s process as it was (the old version keeps running).
# It cannot download anything. Each run that gets past these checks appends a line to
# /var/lib/k3s-standin/installs (tests count them). Like K3s's, it writes k3s-killall.sh and the
# uninstall script (k3s-uninstall.sh on a server, k3s-agent-uninstall.sh on an agent) to the bin
# directory; see write_uninstall for what they remove and their counter file.
set -eu

info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}

# The command: server, or agent with K3S_URL.
if [ -n "${K3S_URL:-}" ]; then
    case "$K3S_URL" in
        https://*) ;;
        *) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
    esac
    if [ -z "${K3S_TOKEN:-}" ] && [ -z "${K3S_TOKEN_FILE:-}" ]; then
        fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
    fi
    default_command=agent
else
    default_command=server
fi
# shellcheck disable=SC2086
set -- ${INSTALL_K3S_EXEC:-} "$@"
case "${1:-}" in
    server|agent) command=$1; shift ;;
    *) command=$default_command ;;
esac

# A service manager, in K3s's script's order: OpenRC, else systemd. (K3s's also takes /bin/systemctl
# off the PATH; on a node /bin is on it, and the tests of the refusal run with an empty PATH.)
if [ -x /sbin/openrc-run ]; then
    manager=openrc
elif command -v systemctl >/dev/null 2>&1; then
    manager=systemd
else
    fatal "Can not find systemd or openrc to use as a process supervisor for k3s"
fi

if [ "$command" = server ]; then service=k3s; else service=k3s-agent; fi
if [ "$manager" = systemd ]; then
    unit_file=/etc/systemd/system/$service.service
    env_file=/etc/systemd/system/$service.service.env
else
    unit_file=/etc/init.d/$service
    env_file=/etc/rancher/k3s/$service.env
fi
# What K3s's script hashes, before it changes anything (a missing file hashes as its error message).
installed_hashes() { sha256sum "$BIN_DIR/k3s" "$unit_file" "$env_file" 2>&1 || true; }
PRE_INSTALL_HASHES=$(installed_hashes)

case "${INSTALL_K3S_SKIP_DOWNLOAD:-}" in
    true|binary)
        [ -x "$BIN_DIR/k3s" ] || fatal "Executable k3s binary not found at $BIN_DIR/k3s"
        info "Skipping k3s download and verify"
        ;;
    *) fatal "the K3s stand-in cannot download K3s ${INSTALL_K3S_VERSION:-(stable)}: set INSTALL_K3S_SKIP_DOWNLOAD=true with the binary in $BIN_DIR" ;;
esac

# Like K3s's installer: k3s-killall.sh stops the services and kills every K3s process.
write_killall() {
    cat > "$BIN_DIR/k3s-killall.sh" <<KILL
#!/bin/sh
# K3s STAND-IN killall (tests only)
for s in k3s k3s-agent; do [ -e /etc/init.d/\$s ] && rc-service \$s stop >/dev/null 2>&1; done
for s in k3s k3s-agent; do [ -e /etc/systemd/system/\$s.service ] && systemctl stop \$s >/dev/null 2>&1; done
pkill -KILL -f '$BIN_DIR/k3s (server|agent|kubectl)' 2>/dev/null
exit 0
KILL
    chmod 0755 "$BIN_DIR/k3s-killall.sh"
}

# Like K3s's installer: k3s-uninstall.sh (server) or k3s-agent-uninstall.sh (agent) beside the
# binary. It kills K3s (k3s-killall.sh), removes its service unit and env file, and, unless another
# K3s service is still installed, the binary, the killall script, /etc/rancher/k3s and
# /var/lib/rancher/k3s (K3s keeps /etc/rancher/node, the node password); it removes itself on exit.
# Each run appends a line to /var/lib/provision-standin-uninstalls (outside what it removes: tests
# count the runs).
write_uninstall() {
    cat > "$BIN_DIR/$uninstall" <<UNINSTALL
#!/bin/sh
# K3s STAND-IN uninstall (tests only)
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
echo "\$(date +%s) $uninstall" >> /var/lib/provision-standin-uninstalls
$BIN_DIR/k3s-killall.sh
command -v rc-update >/dev/null 2>&1 && rc-update delete $service default >/dev/null 2>&1
[ -e /etc/systemd/system/$service.service ] && systemctl disable $service >/dev/null 2>&1
rm -f $unit_file $env_file
[ $manager = systemd ] && systemctl daemon-reload
true
remove_uninstall() { rm -f $BIN_DIR/$uninstall; }
trap remove_uninstall EXIT
if ls /etc/init.d/k3s* /etc/systemd/system/k3s*.service >/dev/null 2>&1; then
    echo 'Additional k3s services installed, skipping uninstall of k3s'
    exit
fi
rm -rf /etc/rancher/k3s /run/k3s /var/lib/rancher/k3s /var/lib/kubelet
rm -f $BIN_DIR/k3s $BIN_DIR/k3s-killall.sh
UNINSTALL
    chmod 0755 "$BIN_DIR/$uninstall"
}

mkdir -p /var/lib/k3s-standin
echo "$(date +%s) ${INSTALL_K3S_VERSION:-} $command" >> /var/lib/k3s-standin/installs

mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s
umask 077
env | grep -E '^(K3S_|CONTAINERD_)' | sed -e 's/=\(.*\)/="\1"/' > "$env_file.new" || true
mv -f "$env_file.new" "$env_file"
chmod 0600 "$env_file"
umask 022

if [ "$manager" = systemd ]; then
    # As K3s's script writes it: Type=notify without a start timeout (an agent that cannot join
    # keeps 'systemctl restart' waiting for ever), restarted always, output to journald.
    cat > "$unit_file.new" <<UNIT
[Unit]
Description=Lightweight Kubernetes (k3s stand-in, tests only)
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$env_file
KillMode=process
Delegate=yes
User=root
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=$BIN_DIR/k3s $command $*
UNIT
    mv -f "$unit_file.new" "$unit_file"
else
cat > "/etc/init.d/$service.new" <<UNIT
#!/sbin/openrc-run
# K3s STAND-IN service unit (tests only), written by the stand-in install script
description="k3s stand-in ($command)"
supervisor=supervise-daemon
command="$BIN_DIR/k3s"
command_args="$command $*"
output_log="/var/log/$service.log"
error_log="/var/log/$service.log"
respawn_delay=2
respawn_max=0
UNIT
chmod 0755 "/etc/init.d/$service.new"
mv -f "/etc/init.d/$service.new" "/etc/init.d/$service"
fi

if [ "$command" = server ]; then uninstall=k3s-uninstall.sh; else uninstall=k3s-agent-uninstall.sh; fi
write_killall
write_uninstall

# Like K3s's service_enable_and_start: the unit is enabled (and systemd reloaded) before the skip rule,
# so an unchanged re-run enables a unit that was disabled by hand without starting it.
if [ "$manager" = systemd ]; then
    systemctl enable "$service" >/dev/null 2>&1
    systemctl daemon-reload
fi

POST_INSTALL_HASHES=$(installed_hashes)
if [ "$PRE_INSTALL_HASHES" = "$POST_INSTALL_HASHES" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ]; then
    info "No change detected so skipping service start"
    exit 0
fi

info "Starting $service"
if [ "$manager" = systemd ]; then
    # Like K3s's script: restart, which returns once the unit notifies READY=1.
    rm -f /var/lib/rancher/k3s/agent/standin-joined
    systemctl restart "$service"
    info "$service is up"
    exit 0
fi
if rc-service "$service" status >/dev/null 2>&1 && grep -qx keep-old-process /var/lib/k3s-standin/faults 2>/dev/null; then
    : # the fault: the old process stays as it was
elif rc-service "$service" status >/dev/null 2>&1; then
    rm -f /var/lib/rancher/k3s/agent/standin-joined
    rc-service "$service" restart >/dev/null
else
    rm -f /var/lib/rancher/k3s/agent/standin-joined
    rc-service "$service" start >/dev/null
fi

# Like a Type=notify unit without a start timeout: wait until the service says it is up, for ever.
if [ "$command" = agent ]; then
    until [ -f /var/lib/rancher/k3s/agent/standin-joined ]; do sleep 0.5; done
else
    until [ -f /etc/rancher/k3s/k3s.yaml ] && [ "$("$BIN_DIR/k3s" kubectl get --raw /readyz 2>/dev/null)" = ok ]; do sleep 0.5; done
fi
info "$service is up"
