# Sourced by get-kernel.sh and mkinitramfs.sh: fetch Debian arm64 packages with apt without
# installing them. Every failure is one line naming what is missing and how to get it.

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# Makes sure apt knows arm64 packages: adds arm64 as a foreign architecture and updates the
# lists when run as root; otherwise says what to run.
apt_arm64_ready() {
    command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
        die "apt-get/dpkg not found: this needs a Debian (or derived) host"
    if ! { dpkg --print-architecture; dpkg --print-foreign-architectures; } | grep -qx arm64; then
        [ "$(id -u)" = 0 ] ||
            die "arm64 is not a dpkg architecture here; as root run: dpkg --add-architecture arm64 && apt-get update"
        echo "$PROG: adding arm64 as a foreign dpkg architecture"
        dpkg --add-architecture arm64
        APT_UPDATED=
    fi
}

# apt-get update, at most once per run, and only as root.
apt_update_once() {
    [ -z "${APT_UPDATED-}" ] || return 1
    [ "$(id -u)" = 0 ] || return 1
    APT_UPDATED=1
    echo "$PROG: apt-get update"
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed (is the Debian mirror reachable?)"
}

# Prints the candidate version of PKG (with :arm64), updating the lists once if apt has none.
apt_candidate() {
    local pkg=$1 version
    version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        apt_update_once || true
        version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    fi
    [ -n "$version" ] && [ "$version" != "(none)" ] ||
        die "apt cannot provide $pkg (no candidate version; run apt-get update as root, check the sources)"
    echo "$version"
}

# fetch_deb PKG VERSION DIR: prints the path of PKG's .deb in DIR, downloading it unless DIR
# already holds that version.
fetch_deb() {
    local pkg=$1 version=$2 dir=$3 name deb
    name=${pkg%:*}
    mkdir -p "$dir"
    # apt names the file NAME_VERSION_ARCH.deb with ':' in the version escaped as %3a.
    deb="$dir/${name}_${version//:/%3a}_arm64.deb"
    if [ -s "$deb" ]; then
        echo "$PROG: reusing $deb" >&2
    else
        echo "$PROG: downloading $name $version (arm64)" >&2
        (cd "$dir" && apt-get download -qq "$pkg=$version" >/dev/null 2>&1) ||
            die "apt-get download $pkg=$version failed (is the Debian mirror reachable?)"
        [ -s "$deb" ] || die "apt-get download $pkg=$version did not produce $deb"
    fi
    echo "$deb"
}
