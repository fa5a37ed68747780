#!/usr/bin/env bash
# Gets the official Microkit 2.3.0 SDK into lazyfp's cache when no SDK is given, so that the
# Makefile's MICROKIT_SDK default finds it there. Never fails the caller over the SDK: when
# nothing can be fetched it says why in one line, records the reason for make test's SKIPPED
# line and exits 0.
#   MICROKIT_SDK        set and non-empty: that SDK is used, nothing is fetched
#   LAZYFP_SYSTEM_SDK   an installed SDK used when present (default /opt/microkit-sdk; empty: none)
#   LAZYFP_SDK_CACHE    the cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/lazyfp)
#   MICROKIT_SDK_URL    where the tarball comes from (default: the release for this host)
#   MICROKIT_SDK_SHA256 the tarball's expected sha256 (default: the pin below for the release)
#   LAZYFP_FETCH_TIMEOUT seconds to connect, and to wait while the transfer stalls (default 30)
set -euo pipefail

version=2.3.0
# sha256 of the official tarballs; empty until one has been fetched and checked by hand.
declare -A pinned=([linux-x86-64]="" [linux-aarch64]="")

cache=${LAZYFP_SDK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lazyfp}
dest=$cache/microkit-sdk-$version
reason_file=$cache/no-sdk.txt
system_sdk=${LAZYFP_SYSTEM_SDK-/opt/microkit-sdk}
timeout=${LAZYFP_FETCH_TIMEOUT:-30}

# An SDK unpacked at $1 that lazyfp can use: the tool and at least one board config's labels.
sdk_ok() {
    [ -x "$1/bin/microkit" ] && compgen -G "$1/board/*/*/invocations_all.json" >/dev/null
}

# give_up REASON: ends the line (begun by the fetch's announcement, if any) with why, records it.
announced=
give_up() {
    local why=$*
    if [ -n "$announced" ]; then
        echo "no Microkit SDK fetched: $why"
        why="$url: $why"
    else
        echo "prereqs: no Microkit SDK fetched: $why"
    fi
    mkdir -p "$cache" 2>/dev/null && echo "$why" >"$reason_file" 2>/dev/null || true
    exit 0
}

trap 'give_up "fetch-sdk.sh stopped at line $LINENO"' ERR

# Inside make's own recipes (a sub-make's prereqs) the top-level make has already tried.
if [ "${MAKELEVEL:-0}" -gt 1 ]; then exit 0; fi

if [ -n "${MICROKIT_SDK:-}" ]; then
    sdk_ok "$MICROKIT_SDK" || echo "prereqs: MICROKIT_SDK=$MICROKIT_SDK is not a usable SDK (no bin/microkit or board/*/*/invocations_all.json)"
    exit 0
fi
if [ -n "$system_sdk" ] && sdk_ok "$system_sdk"; then exit 0; fi
if sdk_ok "$dest"; then
    rm -f "$reason_file"
    echo "prereqs: Microkit SDK in $dest"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) host=linux-x86-64 ;;
    Linux-aarch64 | Linux-arm64) host=linux-aarch64 ;;
    *) host= ;;
esac
url=${MICROKIT_SDK_URL:-}
sha=${MICROKIT_SDK_SHA256:-}
if [ -z "$url" ]; then
    [ -n "$host" ] || give_up "no official Microkit $version SDK for $(uname -s) $(uname -m) (set MICROKIT_SDK or MICROKIT_SDK_URL)"
    url=https://github.com/seL4/microkit/releases/download/$version/microkit-sdk-$version-$host.tar.gz
    sha=${sha:-${pinned[$host]}}
fi
command -v curl >/dev/null || give_up "curl is not installed (needed to fetch $url)"
mkdir -p "$cache" 2>/dev/null || give_up "cannot create the cache folder $cache"

# Everything is built under temporary names in the cache and renamed into place only once it
# checks out, so an interrupted run never leaves a half SDK at $dest.
find "$cache" -maxdepth 1 -name '.fetch.*' -mmin +60 -exec rm -rf {} +
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One line whatever happens: the outcome ends the announcement.
printf 'prereqs: fetching the Microkit %s SDK from %s ... ' "$version" "$url"
announced=1
# Fail fast when nothing answers; abort a transfer that stalls (under 1 KiB/s) for $timeout s.
if ! curl -fsSL --connect-timeout "$timeout" --speed-limit 1024 --speed-time "$timeout" \
    -o "$work/sdk.tar.gz" "$url" 2>"$work/curl.err"; then
    give_up "download failed: $(tail -n 1 "$work/curl.err")"
fi
if [ -n "$sha" ]; then
    got=$(sha256sum "$work/sdk.tar.gz" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || give_up "refused: sha256 $got, expected $sha"
fi
mkdir "$work/unpack"
tar -xzf "$work/sdk.tar.gz" -C "$work/unpack" --no-same-owner 2>"$work/tar.err" ||
    give_up "refused: not a readable .tar.gz ($(tail -n 1 "$work/tar.err"))"
tops=("$work"/unpack/*)
if [ ${#tops[@]} != 1 ] || [ ! -d "${tops[0]}" ]; then
    give_up "refused: the tarball does not hold one top folder (like microkit-sdk-$version)"
fi
sdk_ok "${tops[0]}" ||
    give_up "refused: no bin/microkit or board/*/*/invocations_all.json in $(basename "${tops[0]}")"
if [ -e "$dest" ]; then mv "$dest" "$work/old"; fi
mv -T "${tops[0]}" "$dest"
rm -f "$reason_file"
boards=$(cd "$dest/board" && ls | tr '\n' ' ')
checked=$([ -n "$sha" ] && echo "sha256 checked" || echo "no sha256 pinned: not checked")
echo "unpacked into $dest (boards: ${boards% }; $checked)"
