# tests/integration/lib_kafka.sh - helpers of the Kafka backend's tests
# (source after lib.sh). librdkafka's mock cluster runs in a process of its
# own (streambus-kafka-mock, tools/kafka_mock.c), stopped at exit; kcat is
# the independent client that produces and consumes beside the mount.
#   kafka_start [-n BROKERS] [-t TOPIC:PARTITIONS]...   start the mock;
#                      sets $KAFKA (bootstrap address), $KAFKA_PID
#   kafka_cmd CMD      a command to the mock (down ID|all, up ID|all,
#                      topic NAME N), waiting for its "ok"
#   kafka_mount [KEY=VALUE]...  mount the cluster on $SB_MNT (backend =
#                      kafka, [kafka] keys as given, timeout_ms default 3000);
#                      KAFKA_MOUNT_FG=1: the daemon in the foreground (-f),
#                      its log in $SB_TMP/daemon.$SB_MOUNT_SEQ.out
#   kc ARGS...         kcat against the mock, under a deadline

KAFKA_MOCK=$SB_BUILD/streambus-kafka-mock
[ -x "$KAFKA_MOCK" ] || sb_die "no $KAFKA_MOCK (build it first)"
command -v kcat >/dev/null || sb_die "missing tool: kcat (see tools/packages.txt)"

kafka_stop() {
	[ -n "${KAFKA_PID:-}" ] || return 0
	exec 7>&- 2>/dev/null
	kill -TERM "$KAFKA_PID" 2>/dev/null
	wait "$KAFKA_PID" 2>/dev/null
	KAFKA_PID=""
}

kafka_start() {
	mkfifo "$SB_TMP/kafka.in" || sb_die "mkfifo"
	"$KAFKA_MOCK" -o "$SB_TMP/kafka.addr" "$@" <"$SB_TMP/kafka.in" >"$SB_TMP/kafka.out" 2>&1 &
	KAFKA_PID=$!
	exec 7>"$SB_TMP/kafka.in"
	SB_CLEANUP_HOOKS+=("kafka_stop")
	sb_wait_until '[ -s "$SB_TMP/kafka.addr" ]' 10 || {
		cat "$SB_TMP/kafka.out" >&2
		sb_die "the mock cluster did not start"
	}
	KAFKA=$(cat "$SB_TMP/kafka.addr")
}

kafka_cmd() {
	local n
	n=$(grep -c . "$SB_TMP/kafka.out")
	echo "$*" >&7
	sb_wait_until "[ \$(grep -c . '$SB_TMP/kafka.out') -gt $n ]" 10 || sb_die "mock: no answer to '$*'"
	tail -1 "$SB_TMP/kafka.out" | grep -q '^ok' || sb_die "mock: '$*': $(tail -1 "$SB_TMP/kafka.out")"
}

kafka_mount() {
	local ini kv timeout=3000
	ini=$SB_TMP/kafka.$SB_MOUNT_SEQ.ini
	{
		printf '[mount]\nbackend = kafka\nmountpoint = %s\n[kafka]\nbootstrap.servers = %s\n' \
			"$SB_MNT" "$KAFKA"
		for kv in "$@"; do
			case $kv in timeout_ms=*) timeout=${kv#*=} ;; *) printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" ;; esac
		done
		printf 'timeout_ms = %s\n' "$timeout"
	} >"$ini"
	if [ -n "${KAFKA_MOUNT_FG:-}" ]; then
		SB_MOUNT_PATHS=0 sb_mount_fg -c "$ini"
	else
		SB_MOUNT_PATHS=0 sb_mount -c "$ini"
	fi
}

kc() { t kcat -b "$KAFKA" "$@"; }
