#!/usr/bin/env bash
# The Linux guest's interactive console: boots to the busybox shell, types a command on the
# board's serial line, expects its output, then powers off from the shell.
# usage: linux-shell-test.sh LOADER_IMG LOG [TIMEOUT_S]
set -uo pipefail
img=$1 log=$2 limit=${3:-300}
fifo=$(mktemp -u); mkfifo "$fifo"
timeout --foreground -k 5 "$limit" "$(dirname "$0")/qemu.sh" "$img" <"$fifo" >"$log" 2>&1 &
qpid=$!
exec 3>"$fifo"
# Type only once the shell is there.
for _ in $(seq 1 "$limit"); do
    grep -q "built-in shell" "$log" 2>/dev/null && break
    kill -0 $qpid 2>/dev/null || break
    sleep 1
done
sleep 2
printf 'echo lazyfp-shell-$((6*7))\n' >&3
for _ in $(seq 1 30); do grep -q "lazyfp-shell-42" "$log" && break; sleep 1; done
printf 'poweroff -f\n' >&3
wait $qpid
rc=$?
exec 3>&-
rm -f "$fifo"
tr -d '\r' <"$log" >"$log.txt"
if grep -q "^guest: lazyfp-shell-42" "$log.txt" && [ $rc = 0 ]; then
    echo "linux shell test passed: typed a command, got its output, powered off from the shell"
else
    grep -v '^x[0-9]\|^tpidr' "$log.txt" | tail -n 12
    echo "linux shell test FAILED (qemu exit $rc)"; exit 1
fi
