#!/usr/bin/env bash
# SPEC §3 and §4 with several processes at one name: every close that
# succeeded is its own whole record, once; no reader sees a file being
# written (a record not yet appended), and no other open cuts it in two.
#   - generated rounds (SB_WRITERS_ROUNDS, seed SB_WRITERS_SEED): 2-5
#     processes each write a few dozen unique payloads to one name, in the
#     topic (open w or a) or in .keys/ (w), write, close; the records of
#     that key must be exactly the payloads whose close succeeded (a failure
#     must be a clean ENOENT: the name's file was appended between the
#     lookup and the open);
#   - a file being written, opened meanwhile by a reader (EBUSY in the
#     topic, ENOENT in .keys/: no record yet) and by another writer (O_TRUNC:
#     a file of its own), then finished: one record each, whole.
. "$(dirname "$0")/lib.sh"
ROUNDS=${SB_WRITERS_ROUNDS:-6}
SEED=${SB_WRITERS_SEED:-$RANDOM}
sb_msg "t_writers: seed $SEED (SB_WRITERS_SEED=$SEED to repeat), $ROUNDS rounds"
sb_mount -o sync=never
M=$SB_MNT

# A writer: N payloads "TAG-i\n" to PATH opened with MODE; each payload
# whose close succeeded goes to ACK, each failure's errno name to ERR.
cat >"$SB_TMP/writer.py" <<'EOF'
import errno, sys
path, mode, tag, n, ack, err = sys.argv[1:7]
with open(ack, 'w') as a, open(err, 'w') as e:
    for i in range(int(n)):
        p = '%s-%d\n' % (tag, i)
        try:
            f = open(path, mode)
            try:
                f.write(p)
            finally:
                f.close()
            a.write(p)
        except OSError as x:
            e.write(errno.errorcode.get(x.errno, str(x.errno)) + '\n')
EOF

# The payloads of the records of topic DIR keyed KEY, one a line.
cat >"$SB_TMP/bykey.py" <<'EOF'
import os, sys
d, key = sys.argv[1], sys.argv[2].encode()
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    try:
        k = os.getxattr(p, 'user.streambus.key')
    except OSError:
        continue
    if k == key:
        with open(p, 'rb') as f:
            sys.stdout.write(repr(f.read()) + '\n')
EOF

RANDOM=$SEED
for r in $(seq 1 "$ROUNDS"); do
	topic=r$r
	mkdir "$M/$topic" || sb_die "mkdir"
	nw=$((2 + RANDOM % 4))
	where=$((RANDOM % 2))
	path=$M/$topic/same
	[ $where = 1 ] && path=$M/$topic/.keys/same
	case_ "round $r: $nw writers of $([ $where = 1 ] && echo .keys/same || echo same)"
	pids=()
	for w in $(seq 1 "$nw"); do
		mode=w # in .keys/ >> appends to the key's value: a record holds the last one's too
		[ $((RANDOM % 3)) = 0 ] && [ $where = 0 ] && mode=a
		n=$((20 + RANDOM % 60))
		t python3 "$SB_TMP/writer.py" "$path" "$mode" "r$r.w$w" "$n" \
			"$SB_TMP/ack.$r.$w" "$SB_TMP/err.$r.$w" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || assert_fail_now "writer $p exited with an error"; done
	cat "$SB_TMP"/ack.$r.* | python3 -c 'import sys; [print(repr(l.encode())) for l in sys.stdin]' |
		sort >"$SB_TMP/want.$r"
	t python3 "$SB_TMP/bykey.py" "$M/$topic" same | sort >"$SB_TMP/got.$r"
	acked=$(wc -l <"$SB_TMP/want.$r")
	failed=$(cat "$SB_TMP"/err.$r.* | wc -l)
	sb_msg "   $acked closes succeeded, $failed failed ($(cat "$SB_TMP"/err.$r.* | sort | uniq -c | tr -s ' \n' ' '))"
	assert_eq "$(diff "$SB_TMP/want.$r" "$SB_TMP/got.$r" | grep "^[<>]" | head -6)" "" \
		"the records of key 'same' are the payloads whose close succeeded, once each"
	assert_eq "$(cat "$SB_TMP"/err.$r.* | grep -vx ENOENT | sort -u | tr '\n' ' ')" "" \
		"a failed open is a clean ENOENT"
	assert_le "$failed" "$((acked / 2 + 1))" "most closes succeed"
done

# A file being written, opened meanwhile by a reader and by another writer.
cat >"$SB_TMP/during.py" <<'EOF'
import errno, os, sys
d, name, keys = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
path = os.path.join(d, '.keys', name) if keys else os.path.join(d, name)
def err(fn):
    try:
        fn()
        return 'OK'
    except OSError as x:
        return errno.errorcode.get(x.errno, str(x.errno))
a = open(path, 'wb', buffering=0)
a.write(b'part')
out = []
def rd():
    with open(path, 'rb') as f:
        out.append(f.read())
print('reader', err(rd), out)
def wr():
    with open(path, 'wb') as f:
        f.write(b'other\n')
print('writer', err(wr))
a.write(b'-rest\n')
a.close()
EOF
for keys in 0 1; do
	case_ "a file being written ($([ $keys = 1 ] && echo .keys/f || echo f)), opened by a reader and another writer"
	mkdir "$M/d$keys" || sb_die "mkdir"
	out=$(t python3 "$SB_TMP/during.py" "$M/d$keys" f $keys)
	want="reader EBUSY []"
	[ $keys = 1 ] && want="reader ENOENT []"
	assert_eq "$(sed -n 1p <<<"$out")" "$want" "the reader sees no record being written"
	assert_eq "$(sed -n 2p <<<"$out")" "writer OK" "another writer of the name writes a file of its own"
	assert_eq "$(t python3 "$SB_TMP/bykey.py" "$M/d$keys" f | sort | tr '\n' ' ')" \
		"b'other\\n' b'part-rest\\n' " "two records, each whole"
done
sb_umount
