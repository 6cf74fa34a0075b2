#!/usr/bin/env bash
# Every streambus command takes `LOG_DIR [TOPIC]` and `LOG_DIR/TOPIC` the
# same way (stat, dump, verify, recover; with and without a trailing slash;
# a file of the topic given instead is refused, naming LOG_DIR and TOPIC);
# dump --raw writes the payloads and nothing else (cmp against the payloads
# concatenated); verify --json is valid JSON that lists each damage with its
# topic, file and kind. Topics, counts and the damaged record are random
# (SB_TOOL_ARGS_ROUNDS rounds, default 3).
. "$(dirname "$0")/lib_tool.sh"
gen_build
SB=$(realpath "$SB")
rounds=${SB_TOOL_ARGS_ROUNDS:-3}
RANDOM=${SB_SEED:-$$}

for round in $(seq "$rounds"); do
	L=$T/log$round
	ntopics=$((RANDOM % 4 + 2))
	names=()
	for i in $(seq "$ntopics"); do
		name=t$RANDOM-$i
		n=$((RANDOM % 200 + 1))
		gen -s 4096 -i 256 -k "k$i-" "$L" "$name" "$n"
		names+=("$name:$n")
	done

	for nt in "${names[@]}"; do
		t=${nt%%:*} n=${nt##*:}
		for c in stat dump verify recover; do
			a=$("$SB" $c "$L" "$t" 2>&1) || fail "$c LOG_DIR TOPIC: $a"
			b=$("$SB" $c "$L/$t" 2>&1) || fail "$c LOG_DIR/TOPIC: $b"
			s=$("$SB" $c "$L/$t/" 2>&1) || fail "$c LOG_DIR/TOPIC/: $s"
			eq "$b" "$a" "$c $L/$t against $c $L $t"
			eq "$s" "$a" "$c $L/$t/ against $c $L $t"
			u=$("$SB" $c "$L" "$t/" 2>&1) || fail "$c LOG_DIR TOPIC/: $u"
			eq "$u" "$a" "$c $L $t/ against $c $L $t"
		done
		# a file of the topic given for LOG_DIR: exit 2, and the command
		# it suggests instead is the one that works
		f=$(ls "$L/$t" | grep -E '[.](seg|idx)$' | shuf -n 1 --random-source=<(yes $RANDOM))
		for c in stat dump verify recover; do
			rc=0; m=$("$SB" $c "$L/$t/$f" 2>&1) || rc=$?
			eq "$rc" 2 "$c LOG_DIR/TOPIC/$f: exit ($m)"
			sug=${m##*: streambus }
			eq "$sug" "$c $L $t" "$c LOG_DIR/TOPIC/$f suggests its LOG_DIR and topic ($m)"
		done
		# a relative LOG_DIR/TOPIC too
		a=$(cd "$L" && "$SB" stat "$t") || fail "stat TOPIC (in LOG_DIR): $a"
		eq "$a" "$(cd "$L" && "$SB" stat . "$t")" "stat TOPIC (in LOG_DIR)"

		# --raw: exactly the payloads, one after another
		from=$((RANDOM % n))
		for ((o = from; o < n; o++)); do printf 'rec %d\n' "$o"; done >"$T/want"
		"$SB" dump --raw --from "$from" "$L/$t" >"$T/raw"
		cmp "$T/raw" "$T/want" || fail "dump --raw --from $from $L/$t: $(head -c 200 "$T/raw" | od -c | head -5)"
		"$SB" dump --raw --from "$from" "$L" "$t" >"$T/raw2"
		cmp "$T/raw2" "$T/want" || fail "dump --raw LOG_DIR TOPIC differs"
	done
	# dump LOG_DIR: every topic, in name order, each line naming its topic
	total=0
	for nt in "${names[@]}"; do total=$((total + ${nt##*:})); done
	eq "$("$SB" dump "$L" | wc -l)" "$total" "dump LOG_DIR: every record of every topic"
	eq "$("$SB" dump "$L" | cut -d' ' -f1 | uniq | tr '\n' ' ')" \
	   "$(printf '%s\n' "${names[@]}" | cut -d: -f1 | sort | sed 's/^/topic=/' | tr '\n' ' ')" "dump LOG_DIR: topics in order"

	# verify --json on a clean log, then with a flipped byte in a random record
	"$SB" verify --json "$L" >"$T/v.json" || fail "verify --json of a clean log"
	python3 -m json.tool "$T/v.json" >/dev/null || fail "verify --json is not JSON: $(cat "$T/v.json")"
	eq "$(json '(j["damage"], j["exit_status"], all(t["ok"] and not t["problems"] for t in j["topics"]), len(j["topics"]))' <"$T/v.json")" \
	   "(0, 0, True, $ntopics)" "clean verify --json"
	nt=${names[$((RANDOM % ntopics))]}
	t=${nt%%:*} n=${nt##*:} i=$(printf '%s\n' "${names[@]}" | grep -n "^$nt$" | cut -d: -f1)
	o=$((RANDOM % n))
	seg=$(grep -l "k$i-${o}rec $o" "$L/$t"/*.seg)
	pos=$(grep -abo "k$i-${o}rec $o" "$seg" | head -1 | cut -d: -f1)
	printf 'X' | dd of="$seg" bs=1 seek=$((pos + ${#i} + ${#o} + 3)) conv=notrunc status=none
	for form in "$L" "$L/$t"; do
		set +e; "$SB" verify --json $form >"$T/v.json" 2>"$T/e"; rc=$?; set -e
		eq "$rc" 1 "verify --json $form exit with damage"
		python3 -m json.tool "$T/v.json" >/dev/null || fail "verify --json with damage is not JSON: $(cat "$T/v.json")"
		python3 - "$T/v.json" "$t" "$seg" "$o" <<'PY' || fail "verify --json content: $(cat "$T/v.json")"
import json, sys
j = json.load(open(sys.argv[1])); t, seg, off = sys.argv[2], sys.argv[3], sys.argv[4]
assert j["damage"] == 1 and j["exit_status"] == 1, j
bad = [x for x in j["topics"] if not x["ok"]]
assert [x["topic"] for x in bad] == [t], bad
p = bad[0]["problems"]
assert len(p) == 1 and p[0]["kind"] == "record" and p[0]["file"] == seg and p[0]["counted"], p
assert isinstance(p[0]["pos"], int) and p[0]["offset"] == int(off) and off in p[0]["message"], p
PY
	done
	# the text form names the topic too
	set +e; out=$("$SB" verify -q "$L"); set -e
	has "$out" "^$t: offset $o: $seg: byte [0-9]+: record $o fails its CRC" "verify names topic and offset"
done
# a bad word is named as it was given: a short option inside a cluster
# ("-key") is not taken for the word before it, and get's own usage is shown
L=$T/dash
gen -k -key -- "$L" -x 3                        # topic -x, keys -key0..-key2
run_rc rc "$SB" get "$L/-x" -key1
eq "$rc" 2 "get LOG_DIR/-x -key1: exit"
eq "$out" "streambus get: unknown option '-key1' (a TOPIC or KEY starting with '-' goes after '--') (try 'streambus get --help')" \
   "get LOG_DIR/-x -key1 names -key1"
eq "$("$SB" get -- "$L/-x" -key1)" "rec 1" "get -- LOG_DIR/-x -key1"
eq "$("$SB" get -- "$L" -x -key2)" "rec 2" "get -- LOG_DIR -x -key2"
run_rc rc "$SB" get -- "$L" -x -key1 extra
eq "$rc" 2 "get with a fourth argument: exit"
eq "$out" "streambus get: unexpected argument 'extra' (wants LOG_DIR TOPIC KEY or LOG_DIR/TOPIC KEY) (try 'streambus get --help')" \
   "get with a fourth argument names it"
for c in stat dump verify recover; do
	run_rc rc "$SB" $c "$L" -zq
	eq "$rc:$out" "2:streambus $c: unknown option '-zq' (try 'streambus $c --help')" "$c LOG_DIR -zq"
	run_rc rc "$SB" $c --bogus "$L"
	eq "$rc:$out" "2:streambus $c: unknown option '--bogus' (try 'streambus $c --help')" "$c --bogus"
done
# the synopses say the same: streambus(1) and --help
syn=$(MANWIDTH=200 man -l "$SB_TOP/docs/streambus.1" 2>/dev/null | col -b | sed -n '/^SYNOPSIS/,/^DESCRIPTION/p')
for c in stat dump verify recover; do
	has "$syn" "streambus $c .*LOG_DIR \\[TOPIC\\]" "streambus(1) synopsis: $c LOG_DIR [TOPIC]"
	has "$("$SB" $c --help)" "LOG_DIR/TOPIC" "$c --help: LOG_DIR/TOPIC"
done
has "$syn" "streambus recover \\[--cut\\]" "streambus(1) synopsis: recover --cut"
has "$syn" "streambus get LOG_DIR TOPIC KEY" "streambus(1) synopsis: get"
has "$syn" "streambus dump .*\\[--follow \\| --keys\\]" "streambus(1) synopsis: dump --follow, --keys"
# every command of --help has its section in streambus(1), and every option
# of its --help is there
man=$(MANWIDTH=200 man -l "$SB_TOP/docs/streambus.1" 2>/dev/null | col -b)
for c in $("$SB" --help | sed -n 's/^  \([a-z]\+\) .*/\1/p'); do
	sec=$(sed -n "/^   $c /,/^   [a-z]/p" <<<"$man")
	[ -n "$sec" ] || fail "streambus(1) has no section for $c (streambus --help lists it)"
	[ "$c" = bench ] && continue    # streambus bench --help is the reference
	for o in $("$SB" $c --help | grep -oE '^ +(-[a-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+$'); do
		[ "$o" = --help ] && continue
		grep -qE -- "(^|[ (])$o([ ,.;:)]|$)" <<<"$sec" || fail "streambus(1): $c has no $o (its --help has)"
	done
done
has "$syn" "streambus verify \\[--json\\]" "streambus(1) synopsis: verify --json"
echo "t_tool_args: ok"
