# lib_tool.sh - sourced by tests/integration/t_tool_*.sh (not a test itself).
# Gives: $SB (the streambus binary), $T (a temp dir removed at exit), fail,
# eq, has, gen_build/gen (make logs with the store API, without FUSE),
# json (evaluate a python expression on JSON from stdin).
set -euo pipefail
: "${SB_BUILD:?SB_BUILD must name the build directory}"
SB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SB=$SB_BUILD/streambus
[ -x "$SB" ] || { echo "FAIL: $SB is missing (build first)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/sbtool.XXXXXX")
sb_cleanup_hooks=()
sb_cleanup() {
	local h
	for h in "${sb_cleanup_hooks[@]}"; do eval "$h" || true; done
	rm -rf "$T"
}
trap sb_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# eq ACTUAL EXPECTED WHAT
eq() { [ "$1" == "$2" ] || fail "$3: got '$1', expected '$2'"; }
# has TEXT PATTERN WHAT: TEXT contains the extended regex PATTERN. (A here-
# string, not printf | grep -q: grep -q stops at the first match, printf
# then dies of SIGPIPE, and pipefail made that a failure now and then.)
has() { grep -Eq -- "$2" <<<"$1" || fail "$3: no match for /$2/ in: $1"; }
# hasnt TEXT PATTERN WHAT
hasnt() { ! grep -Eq -- "$2" <<<"$1" || fail "$3: unexpected /$2/ in: $1"; }
# run_rc VAR CMD...: run CMD, stdout+stderr into $out, exit status into VAR
run_rc() { local __v=$1; shift; set +e; out=$("$@" 2>&1); printf -v "$__v" '%s' $?; set -e; }
# json EXPR < file: print the python expression EXPR over j (the parsed JSON)
json() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# gen_build: compile $T/gen, a small program that appends records with the
# store API (and so needs no FUSE): gen LOG_DIR TOPIC COUNT [options]
#   -s SEGMENT_BYTES  -i INDEX_INTERVAL_BYTES  -k KEY_PREFIX (key = prefix+offset)
#   -m KEY_MEMTABLE_BYTES (small: a key table every few hundred keys)
#   -z (compression = zstd: the sealed segments compressed before the close)
#   -t TS0 (timestamp of offset o: TS0 + o*1000000; default 1700000000123456789)
#   -a AT (first offset of an empty topic)  -x (then one binary record)
#   -d N (then delete the records before offset N: whole segments go, the
#   log start moves to N)
# Payload of offset o: "rec o\n".
gen_build() {
	local cflags=()
	if grep -q '^SB_SANITIZE:BOOL=ON' "$SB_BUILD/CMakeCache.txt" 2>/dev/null; then
		cflags=(-fsanitize=address,undefined -fno-omit-frame-pointer)
	fi
	cat >"$T/gen.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sb_store.h"

int main(int argc, char **argv)
{
	sb_store_options o;
	sb_store *s;
	sb_log *l;
	const char *kp = NULL;
	long long ts0 = 1700000000123456789LL;
	unsigned long long at = 0;
	unsigned long long del = 0;
	int opt, rc, bin = 0, have_at = 0, have_del = 0;

	sb_store_options_default(&o);
	o.no_flusher = 1;
	while ((opt = getopt(argc, argv, "s:i:k:t:a:xd:m:z")) != -1) {
		switch (opt) {
		case 's': o.defaults.segment_bytes = strtoull(optarg, 0, 10); break;
		case 'i': o.defaults.index_interval_bytes = (unsigned)strtoul(optarg, 0, 10); break;
		case 'k': kp = optarg; break;
		case 'm': o.defaults.key_memtable_bytes = strtoull(optarg, 0, 10); break;
		case 'z': o.defaults.compression = SB_COMPRESS_ZSTD; break;
		case 't': ts0 = strtoll(optarg, 0, 10); break;
		case 'a': at = strtoull(optarg, 0, 10); have_at = 1; break;
		case 'x': bin = 1; break;
		case 'd': del = strtoull(optarg, 0, 10); have_del = 1; break;
		default: return 2;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "usage: gen [opts] LOG_DIR TOPIC COUNT\n");
		return 2;
	}
	long n = atol(argv[optind + 2]);
	if ((rc = sb_store_open(argv[optind], &o, &s))) {
		fprintf(stderr, "gen: open: %s\n", sb_strerror(rc));
		return 1;
	}
	sb_store_create(s, argv[optind + 1]);
	if ((rc = sb_store_get(s, argv[optind + 1], &l))) {
		fprintf(stderr, "gen: get: %s\n", sb_strerror(rc));
		return 1;
	}
	for (long i = 0; i < n + bin; i++) {
		char v[64], k[256];
		static const char b[] = "\x00\x01\xff\"\\tab\there\n";
		uint64_t off = sb_log_next(l);
		sb_record_in r = {0};

		if (i < n) {
			r.value_len = (uint32_t)snprintf(v, sizeof v, "rec %llu\n", (unsigned long long)off);
			r.value = v;
		} else {
			r.value = b;
			r.value_len = sizeof b - 1;
		}
		if (kp) {
			r.key_len = (uint32_t)snprintf(k, sizeof k, "%s%llu", kp, (unsigned long long)off);
			r.key = k;
		}
		if (have_at && i == 0) {
			r.timestamp_ns = ts0 + (long long)at * 1000000;
			rc = sb_log_append_at(l, at, &r, 1);
		} else {
			r.timestamp_ns = ts0 + (long long)off * 1000000;
			rc = sb_log_append(l, &r, 1, NULL);
		}
		if (rc) {
			fprintf(stderr, "gen: append: %s\n", sb_strerror(rc));
			return 1;
		}
	}
	if (o.defaults.compression != SB_COMPRESS_NONE && ((rc = sb_log_sync(l)) || (rc = sb_log_compress(l, NULL)))) {
		fprintf(stderr, "gen: compress: %s\n", sb_strerror(rc));
		return 1;
	}
	if (have_del && (rc = sb_log_delete_before(l, del))) {
		fprintf(stderr, "gen: delete_before: %s\n", sb_strerror(rc));
		return 1;
	}
	if ((rc = sb_store_close(s))) {
		fprintf(stderr, "gen: close: %s\n", sb_strerror(rc));
		return 1;
	}
	return 0;
}
CEOF
	cc -std=c11 -D_GNU_SOURCE -O1 -g "${cflags[@]}" -I"$SB_TOP/store/include" "$T/gen.c" \
		"$SB_BUILD/libsbstore.a" -llz4 -lzstd -lpthread -lm -o "$T/gen" || fail "cannot build the log generator"
}
gen() { "$T/gen" "$@" || fail "gen $*"; }
