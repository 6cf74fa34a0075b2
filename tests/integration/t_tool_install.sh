#!/usr/bin/env bash
# cmake --install: both programs in bin/, the three man pages in
# share/man/man{1,5,8} (well-formed troff; the mount.ini page names every key
# of SPEC section 1; streambusfs(8) has the fstab line), and the fstab,
# systemd unit and mount.ini examples in share/doc/streambus/, and the
# mount(8) helper /sbin/mount.fuse.streambusfs linked to bin/streambusfs.
# Staged under DESTDIR, so as not to touch /sbin (t_mount_helper.sh installs
# for real and mounts through mount(8)).
. "$(dirname "$0")/lib_tool.sh"
prefix=/opt/streambus-test
D=$T/dest
P=$D$prefix
DESTDIR=$D cmake --install "$SB_BUILD" --prefix "$prefix" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
[ -x "$P/bin/streambus" ] || fail "bin/streambus missing"
"$P/bin/streambus" --version | grep -q '^streambus [0-9]' || fail "installed streambus does not run"
if [ -x "$SB_BUILD/streambusfs" ]; then
	[ -x "$P/bin/streambusfs" ] || fail "bin/streambusfs missing"
	h=$D/sbin/mount.fuse.streambusfs
	[ -L "$h" ] || fail "the mount(8) helper sbin/mount.fuse.streambusfs is missing"
	eq "$(readlink "$h")" "$prefix/bin/streambusfs" "the mount(8) helper links to the installed daemon"
fi
for m in man1/streambus.1 man5/streambus-mount.ini.5 man8/streambusfs.8; do
	f=$P/share/man/$m
	[ -s "$f" ] || fail "$m missing"
	# troff without warnings, and a NAME section man/apropos can index
	w=$(groff -man -ww -z "$f" 2>&1) || fail "$m: groff failed: $w"
	eq "$w" "" "$m: groff warnings"
	grep -q '^\.SH NAME' "$f" || fail "$m: no NAME section"
	txt=$(MANWIDTH=100 man -l "$f" 2>/dev/null | col -b)
	has "$txt" "SYNOPSIS" "$m renders"
done
ini=$(MANWIDTH=200 man -l "$P/share/man/man5/streambus-mount.ini.5" 2>/dev/null | col -b)
for k in log_dir create mountpoint allow_other owner group umask list_log segment_bytes \
	 index_interval_bytes max_record_bytes sync sync_interval_ms retention_bytes retention_ms; do
	has "$ini" "^ +$k\\b|^ +[a-z_, ]*\\b$k\\b" "mount.ini(5) documents $k"
done
# ... and every [log] key that streambusfs --help lists (with its default)
if [ -x "$SB_BUILD/streambusfs" ]; then
	keys=$("$SB_BUILD/streambusfs" --help 2>&1 | sed -n '/^  \[log\]/,/^  \[topic:NAME\]/p' |
	       grep -oE '\b[a-z][a-z_]* (-?[0-9]+|interval|none|delete)\b' | cut -d' ' -f1)
	[ "$(wc -l <<<"$keys")" -ge 12 ] || fail "streambusfs --help: [log] keys not found: $keys"
	for k in $keys; do
		has "$ini" "^ +$k \(default " "mount.ini(5) documents $k (listed by streambusfs --help) with its default"
	done
fi
for s in '\[mount\]' '\[log\]' '\[topic:NAME\]'; do has "$ini" "$s" "mount.ini(5) section $s"; done
fs8=$(MANWIDTH=200 man -l "$P/share/man/man8/streambusfs.8" 2>/dev/null | col -b)
has "$fs8" '/var/lib/streambus /mnt/streambus fuse\.streambusfs config=/etc/streambus/mount\.ini 0 0' "fstab line in streambusfs(8)"
one=$(MANWIDTH=200 man -l "$P/share/man/man1/streambus.1" 2>/dev/null | col -b)
for c in stat dump verify recover bench; do has "$one" "^ +$c " "streambus(1) documents $c"; done

D=$P/share/doc/streambus
unit=$D/mnt-streambus.mount
[ -s "$unit" ] || fail "systemd unit missing"
eq "$(sed -n 's/^Type=//p' "$unit")" "fuse.streambusfs" "unit Type"
eq "$(sed -n 's/^What=//p' "$unit")" "/var/lib/streambus" "unit What"
eq "$(sed -n 's/^Where=//p' "$unit")" "/mnt/streambus" "unit Where (matches its name)"
eq "$(sed -n 's/^Options=//p' "$unit")" "config=/etc/streambus/mount.ini" "unit Options"
if command -v systemd-analyze >/dev/null && [ -d /run/systemd/system ]; then
	systemd-analyze verify "$unit" 2>&1 | grep -vi 'not found\|No such' | grep -q . &&
		fail "systemd-analyze verify: $(systemd-analyze verify "$unit" 2>&1)"
fi
eq "$(grep -v '^#' "$D/fstab" | grep -v '^$')" "/var/lib/streambus /mnt/streambus fuse.streambusfs config=/etc/streambus/mount.ini 0 0" "fstab example"
[ -s "$D/mount.ini" ] || fail "mount.ini example missing"
echo "t_tool_install: ok"
