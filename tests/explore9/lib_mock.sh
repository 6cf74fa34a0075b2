# lib_mock.sh - the Kafka repro scripts' setup (sourced): kafka_up NAME
# TOPIC:PARTS... makes a temp dir under /tmp/t9 (D), starts the mock cluster
# of 3 brokers with those topics (its address K; `mock CMD` sends it a
# command on fd 7 and prints its answer) and mounts it on $D/mnt (M) with
# timeout_ms 3000; all undone at exit. SB_BUILD (default build).
B=$(realpath "${SB_BUILD:-build}")
MOCK_PID= ; FS_PID=
cleanup() {
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null
	[ -n "$FS_PID" ] && { timeout 20 tail --pid="$FS_PID" -f /dev/null; kill "$FS_PID" 2>/dev/null; }
	exec 7>&- 2>/dev/null
	[ -n "$MOCK_PID" ] && { kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; }
	rm -rf "$D"
}
kafka_up() {
	local name=$1 t args=()
	shift
	for t; do args+=(-t "$t"); done
	mkdir -p /tmp/t9
	D=$(mktemp -d "/tmp/t9/$name.XXXX")
	M=$D/mnt; mkdir -p "$M"
	trap cleanup EXIT INT TERM
	mkfifo "$D/in"
	"$B/streambus-kafka-mock" -n 3 "${args[@]}" -o "$D/addr" <"$D/in" >"$D/mock.out" 2>&1 &
	MOCK_PID=$!
	exec 7>"$D/in"
	for i in $(seq 100); do [ -s "$D/addr" ] && break; sleep 0.1; done
	K=$(cat "$D/addr")
	printf '[mount]\nbackend = kafka\nmountpoint = %s\n[kafka]\nbootstrap.servers = %s\ntimeout_ms = 3000\n' "$M" "$K" >"$D/k.ini"
	"$B/streambusfs" -f -c "$D/k.ini" >"$D/daemon.out" 2>&1 &
	FS_PID=$!
	for i in $(seq 100); do mountpoint -q "$M" && break; sleep 0.1; done
}
mock() { echo "$*" >&7; sleep 0.3; tail -1 "$D/mock.out"; }
