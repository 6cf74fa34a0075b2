#!/usr/bin/env bash
# tools/deps.sh - install the Debian packages in tools/packages.txt that are
# missing (with apt-get; needs root or sudo). Sourced by tools/run and tools/test.
sb_install_deps() {
	local here pkgs=() p
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
	done < "$here/packages.txt"
	[ ${#pkgs[@]} -eq 0 ] && return 0
	echo "installing: ${pkgs[*]}"
	local sudo=
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq || return 1
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || return 1
}

# sb_build DIR [cmake args...]: configure and build into DIR (only the
# targets in $SB_BUILD_TARGETS when it is set).
sb_build() {
	local dir=$1; shift
	local top
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	local log rc
	cmake -S "$top" -B "$top/$dir" "$@" >/dev/null || return 1
	log=$(mktemp)
	# shellcheck disable=SC2086
	cmake --build "$top/$dir" -j"$(nproc)" ${SB_BUILD_TARGETS:+--target $SB_BUILD_TARGETS} >"$log" 2>&1
	rc=$?
	grep -Ev '^\[|^Consolidate|^-- |^gmake' "$log" || true
	rm -f "$log"
	return $rc
}
