#!/usr/bin/env bash
# Tests of scripts/fetch-sdk.sh and of the Makefile's SDK default, with small file:// tarballs
# made here (from the local SDK's bin/microkit and one board config when there is one, else from
# stand-ins) and an unreachable URL. Nothing outside a temporary folder is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
fetch=$repo/scripts/fetch-sdk.sh
local_sdk=${MICROKIT_SDK:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only what each case sets: no installed SDK, no outer make's level or SDK choice.
unset MAKELEVEL MAKEFLAGS MFLAGS MICROKIT_SDK MICROKIT_SDK_URL MICROKIT_SDK_SHA256 LAZYFP_SDK_CACHE
export LAZYFP_SYSTEM_SDK='' LAZYFP_FETCH_TIMEOUT=5 XDG_CACHE_HOME=$tmp/xdg

failed=0
pass() { echo "test-fetch-sdk: ok: $1"; }
fail() { echo "test-fetch-sdk: FAILED: $1 (last output: ${out:-none})"; failed=1; }
# expect NAME COMMAND...: the command must succeed.
expect() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# ---- tarballs ----
board=qemu_virt_aarch64 config=debug
tool='' labels=''
if [ -n "$local_sdk" ] && [ -x "$local_sdk/bin/microkit" ]; then
    labels=$(compgen -G "$local_sdk/board/*/*/invocations_all.json" | head -n 1 || true)
    tool=$local_sdk/bin/microkit
fi
if [ -n "$labels" ]; then
    config=$(basename "$(dirname "$labels")") board=$(basename "$(dirname "$(dirname "$labels")")")
    echo "test-fetch-sdk: tarballs from $local_sdk (bin/microkit, $board/$config)"
else
    mkdir -p "$tmp/standin"
    printf '#!/bin/sh\necho "microkit stand-in"\n' >"$tmp/standin/microkit"
    chmod +x "$tmp/standin/microkit"
    echo '{"seL4_TCB_SetFlags": 1}' >"$tmp/standin/invocations_all.json"
    tool=$tmp/standin/microkit labels=$tmp/standin/invocations_all.json
    echo "test-fetch-sdk: no local SDK: tarballs from stand-in files"
fi

# mktar NAME [skip-tool|skip-labels|two-tops]: a tarball shaped like the official one.
mktar() {
    local root=$tmp/src-$1/microkit-sdk-2.3.0
    mkdir -p "$root/bin" "$root/board/$board/$config/elf"
    [ "${2:-}" = skip-tool ] || cp "$tool" "$root/bin/microkit"
    [ "${2:-}" = skip-labels ] || cp "$labels" "$root/board/$board/$config/invocations_all.json"
    echo 2.3.0 >"$root/VERSION"
    [ "${2:-}" != two-tops ] || mkdir "$tmp/src-$1/stray"
    tar -czf "$tmp/$1.tar.gz" -C "$tmp/src-$1" .
}
mktar good
mktar no-tool skip-tool
mktar no-labels skip-labels
mktar two-tops two-tops
size=$(stat -c %s "$tmp/good.tar.gz")
head -c $((size / 2)) "$tmp/good.tar.gz" >"$tmp/truncated.tar.gz"
echo '<html><body>Access denied by proxy</body></html>' >"$tmp/html.tar.gz"

# ---- running the script ----
out='' rc=''
# run CACHE URL [VAR=VALUE...]: fetch-sdk.sh into CACHE from URL; sets $out and $rc.
run() {
    local cache=$1 url=$2; shift 2
    rc=0
    out=$(env LAZYFP_SDK_CACHE="$cache" MICROKIT_SDK_URL="$url" "$@" "$fetch" 2>&1) || rc=$?
}
# refused NAME CACHE PATTERN: exit 0, exactly one line naming why, the reason recorded, no SDK, no leftovers.
refused() {
    local name=$1 cache=$2 pattern=$3
    if [ "$rc" = 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q 'no Microkit SDK fetched' <<<"$out" &&
        grep -q -- "$pattern" <<<"$out" && grep -q -- "$pattern" "$cache/no-sdk.txt" &&
        [ ! -e "$cache/microkit-sdk-2.3.0" ] && ! compgen -G "$cache/.fetch.*" >/dev/null; then
        pass "$name"
    else
        fail "$name (rc=$rc)"
    fi
}
# make_sdk [VAR=VALUE...]: the SDK the Makefile picks when MICROKIT_SDK is not given.
make_sdk() {
    make -s --no-print-directory -C "$repo" --eval 'lazyfp-show-sdk: ; @echo "$(MICROKIT_SDK)"' \
        lazyfp-show-sdk "$@"
}

for t in truncated:"not a readable .tar.gz" html:"not a readable .tar.gz" \
    no-tool:"no bin/microkit" no-labels:"invocations_all.json" two-tops:"one top folder"; do
    name=${t%%:*}
    run "$tmp/c-$name" "file://$tmp/$name.tar.gz"
    refused "$name tarball refused" "$tmp/c-$name" "${t#*:}"
done

run "$tmp/c-missing" "file://$tmp/nothing-here.tar.gz"
refused "missing file:// tarball refused" "$tmp/c-missing" "nothing-here.tar.gz.*download failed"

start=$(date +%s)
run "$tmp/c-unreach" "http://127.0.0.1:1/microkit-sdk-2.3.0-linux-x86-64.tar.gz"
took=$(($(date +%s) - start))
refused "unreachable URL: one line, goes on" "$tmp/c-unreach" "127.0.0.1:1/.*download failed: curl: (7)"
expect "unreachable URL gives up at once (${took}s)" [ "$took" -le 3 ]
expect "the Makefile finds no SDK" [ -z "$(make_sdk LAZYFP_SDK_CACHE="$tmp/c-unreach")" ]
make -s --no-print-directory -C "$repo" system-test LAZYFP_SDK_CACHE="$tmp/c-unreach" >"$tmp/skip.out" 2>&1
expect "SKIPPED line names the reason" grep -q "SYSTEM TEST SKIPPED.*127.0.0.1:1.*curl: (7)" "$tmp/skip.out"

# A server that takes the connection and never answers (a stuck proxy): given up after the timeout.
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$tmp/port" &
server=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$tmp/port" ] && break; sleep 0.2; done
start=$(date +%s)
run "$tmp/c-stuck" "http://127.0.0.1:$(cat "$tmp/port")/sdk.tar.gz" LAZYFP_FETCH_TIMEOUT=1
took=$(($(date +%s) - start))
kill "$server" 2>/dev/null || true
refused "a server that never answers: one line, goes on" "$tmp/c-stuck" "download failed: curl: (28)"
expect "it gives up after the timeout (${took}s for 1s)" [ "$took" -le 4 ]

run "$tmp/c-sha" "file://$tmp/good.tar.gz" MICROKIT_SDK_SHA256=0000
refused "sha256 mismatch refused" "$tmp/c-sha" "sha256 .*, expected 0000"

# A run killed right after unpacking (a tar that kills its caller) leaves nothing the Makefile takes.
mkdir -p "$tmp/killtar"
printf '#!/bin/sh\n%s "$@"\nkill -9 $PPID\n' "$(command -v tar)" >"$tmp/killtar/tar"
chmod +x "$tmp/killtar/tar"
run "$tmp/c-killed" "file://$tmp/good.tar.gz" PATH="$tmp/killtar:$PATH"
expect "killed mid-fetch (rc=$rc): no SDK in place" eval '[ "$rc" = 137 ] && [ -z "$(make_sdk LAZYFP_SDK_CACHE="$tmp/c-killed")" ]'
run "$tmp/c-killed" "file://$tmp/good.tar.gz"
expect "the next run completes" [ "$(make_sdk LAZYFP_SDK_CACHE="$tmp/c-killed")" = "$tmp/c-killed/microkit-sdk-2.3.0" ]

# A run interrupted long ago left a complete-looking SDK under its temporary name.
cache=$XDG_CACHE_HOME/lazyfp
mkdir -p "$cache/.fetch.old"
tar -xzf "$tmp/good.tar.gz" -C "$cache/.fetch.old"
touch -d '2 hours ago' "$cache/.fetch.old"
echo "an earlier failure" >"$cache/no-sdk.txt"
expect "a half-done fetch is not taken for an SDK" [ -z "$(make_sdk)" ]

# The default cache folder (XDG_CACHE_HOME), as the Makefile and the script both compute it.
sha=$(sha256sum "$tmp/good.tar.gz" | cut -d' ' -f1)
rc=0
out=$(env MICROKIT_SDK_URL="file://$tmp/good.tar.gz" MICROKIT_SDK_SHA256="$sha" "$fetch" 2>&1) || rc=$?
sdk=$cache/microkit-sdk-2.3.0
expect "good tarball unpacked" grep -q "unpacked into $sdk (boards: $board; sha256 checked)" <<<"$out"
expect "bin/microkit unpacked as it was, executable" eval 'cmp -s "$tool" "$sdk/bin/microkit" && [ -x "$sdk/bin/microkit" ]'
expect "labels unpacked" cmp -s "$labels" "$sdk/board/$board/$config/invocations_all.json"
expect "reason file removed, stale temporaries gone" eval '[ ! -e "$cache/no-sdk.txt" ] && ! compgen -G "$cache/.fetch.*" >/dev/null'
expect "the Makefile takes the cached SDK by default" [ "$(make_sdk)" = "$sdk" ]
expect "the cached SDK passes make sdk-check" make -s --no-print-directory -C "$repo" sdk-check \
    MICROKIT_BOARD="$board" MICROKIT_CONFIG="$config"
mkdir -p "$tmp/installed/bin" && cp "$tool" "$tmp/installed/bin/microkit"
expect "an installed SDK comes first" [ "$(make_sdk LAZYFP_SYSTEM_SDK="$tmp/installed")" = "$tmp/installed" ]

# A cached SDK is not fetched again (the URL would fail).
run "$cache" "http://127.0.0.1:1/x.tar.gz"
expect "cached SDK kept, nothing fetched" eval '[ "$rc" = 0 ] && ! grep -q fetch <<<"$out" && grep -q "Microkit SDK in $sdk" <<<"$out"'
run "$tmp/c-given" "http://127.0.0.1:1/x.tar.gz" MICROKIT_SDK="$sdk"
expect "MICROKIT_SDK given: nothing fetched" eval '[ "$rc" = 0 ] && [ -z "$out" ] && [ ! -e "$tmp/c-given" ]'
run "$tmp/c-sub" "http://127.0.0.1:1/x.tar.gz" MAKELEVEL=2
expect "a sub-make's prereqs fetch nothing" eval '[ "$rc" = 0 ] && [ -z "$out" ] && [ ! -e "$tmp/c-sub" ]'

if [ "$failed" = 0 ]; then echo "test-fetch-sdk: all passed"; else echo "test-fetch-sdk: FAILED"; exit 1; fi
