#!/bin/sh
# Installs the Debian packages heapscope builds and tests with, if any is
# missing. Runs apt-get as root; otherwise prints the command to run.
set -e
pkgs="gcc make pkg-config libunwind-dev libdw-dev libelf-dev libzstd-dev zlib1g-dev libiberty-dev
 libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libncurses-dev valgrind g++ python3
 chromium heaptrack zstd clang libclang-rt-14-dev binutils"
missing=""

# Test-only tools from the npm registry, best effort: a test that needs one
# and does not find it says skip.
npm_tools() {
	command -v npm >/dev/null 2>&1 || return 0
	[ "$(id -u)" = 0 ] || return 0
	npm ls -g speedscope >/dev/null 2>&1 && return 0
	npm install -g --silent speedscope@1.25.0 >/dev/null 2>&1 || echo "heapscope: could not install speedscope from npm; its test will skip" >&2
}
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The Rust example needs cargo; Debian's is enough when no toolchain is on PATH.
command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ] || missing="$missing cargo"
# The browser tests drive Chromium from Node; any Node.js will do.
command -v node >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -z "$missing" ]; then
	npm_tools
	exit 0
fi
echo "heapscope: installing missing packages:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "heapscope: not root; run: sudo apt-get install -y$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_tools
