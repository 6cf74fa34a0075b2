/*
 * cmd_dump.c - `streambus dump LOG_DIR/TOPIC`: one line per record with its
 * offset, time, key, size and payload (escaped, raw, or as JSON lines).
 * Opens the store read-only: no lock, no writes, safe while mounted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus dump [--from N] [--count K] [--raw | --json] LOG_DIR/TOPIC\n"
	"\n"
	"Print the records of TOPIC, one line each:\n"
	"  offset=N time=YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ key=\"K\"|- size=BYTES value=\"PAYLOAD\"\n"
	"The key and payload are escaped (\\\\ \\\" \\n \\t \\r \\xHH) where not printable.\n"
	"Reads only; works while LOG_DIR is mounted.\n"
	"\n"
	"  --from N      start at offset N (default: the first retained record)\n"
	"  --count K     print at most K records\n"
	"  --raw         write the payload bytes as they are after 'value=' (no quotes)\n"
	"  --json        one JSON object per line: offset, timestamp_ns, timestamp,\n"
	"                key (null if none), size, and value (UTF-8 payloads) or\n"
	"                value_base64 (anything else); a non-UTF-8 key is key_base64\n"
	"  -h, --help    this help\n";

enum mode { M_TEXT, M_RAW, M_JSON };

typedef struct buf {
	uint8_t *p;
	size_t cap;
} buf;

static int buf_reserve(buf *b, size_t n)
{
	uint8_t *t;

	if (n <= b->cap)
		return 0;
	t = realloc(b->p, n);
	if (!t)
		return -ENOMEM;
	b->p = t;
	b->cap = n;
	return 0;
}

static void put_json_bytes(const char *field, const uint8_t *p, size_t n)
{
	if (sb_cmd_utf8_valid(p, n)) {
		printf("\"%s\": ", field);
		sb_cmd_put_json_str(stdout, p, n);
	} else {
		printf("\"%s_base64\": ", field);
		sb_cmd_put_json_base64(stdout, p, n);
	}
}

static void print_record(enum mode m, const sb_record_info *info, const uint8_t *key,
			 size_t key_len, const uint8_t *val, size_t len)
{
	char t[64];

	sb_cmd_fmt_time(t, sizeof t, info->timestamp_ns, 1);
	if (m == M_JSON) {
		printf("{\"offset\": %" PRIu64 ", \"timestamp_ns\": %lld, \"timestamp\": \"%s\", ",
		       info->offset, (long long)info->timestamp_ns, t);
		if (info->key_len)
			put_json_bytes("key", key, key_len);
		else
			printf("\"key\": null");
		printf(", \"size\": %zu, ", len);
		put_json_bytes("value", val, len);
		printf("}\n");
		return;
	}
	printf("offset=%" PRIu64 " time=%s key=", info->offset, t);
	if (info->key_len) {
		putchar('"');
		sb_cmd_put_escaped(stdout, key, key_len);
		putchar('"');
	} else {
		putchar('-');
	}
	printf(" size=%zu value=", len);
	if (m == M_RAW) {
		fwrite(val, 1, len, stdout);
	} else {
		putchar('"');
		sb_cmd_put_escaped(stdout, val, len);
		putchar('"');
	}
	putchar('\n');
}

/* Print records [from, from+count) of log; 0 or an sb error (printed). */
static int dump_log(const char *cmd, const char *path, sb_log *log, uint64_t from,
		    uint64_t count, enum mode m)
{
	buf key = {0}, val = {0};
	uint64_t next = sb_log_next(log);
	int rc = 0, errors = 0;

	if (from < sb_log_start(log))
		from = sb_log_start(log);
	for (uint64_t off = from; off < next && count > 0; off++, count--) {
		sb_record_info info;
		size_t got = 0, key_len = 0;

		rc = sb_log_stat(log, off, &info);
		if (rc == -ENOENT && off < sb_log_start(log)) {
			/* The head was removed under us (mounted): skip ahead. */
			off = sb_log_start(log) - 1;
			count++;
			rc = 0;
			continue;
		}
		if (rc)
			goto out_err;
		rc = buf_reserve(&val, info.value_len ? info.value_len : 1);
		if (!rc)
			rc = buf_reserve(&key, info.key_len ? info.key_len : 1);
		if (rc)
			goto out_err;
		rc = sb_log_read(log, off, 0, val.p, info.value_len, &got, &info);
		if (rc)
			goto out_err;
		if (info.key_len) {
			rc = sb_log_read_key(log, off, key.p, key.cap, &key_len);
			if (rc)
				goto out_err;
			if (key_len > key.cap)
				key_len = key.cap;
		}
		print_record(m, &info, key.p, key_len, val.p, got);
		if (ferror(stdout))
			break;
		continue;
out_err:
		/* Say which record and go on with the next: the rest may be fine. */
		fflush(stdout);
		sb_cmd_err(cmd, "%s: record %" PRIu64 ": %s", path, off, sb_strerror(rc));
		if (rc == -ENOMEM || ++errors >= 100)
			break;
	}
	free(key.p);
	free(val.p);
	return errors ? rc ? rc : SB_ECORRUPT : 0;
}

/* Split "LOG_DIR/TOPIC" (trailing slashes ignored) into its two parts; the
 * caller frees *dir. 0 or -EINVAL. */
static int split_path(const char *arg, char **dir, const char **topic)
{
	char *p = strdup(arg), *slash;
	size_t n;

	if (!p)
		return -ENOMEM;
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	slash = strrchr(p, '/');
	if (!slash || !slash[1]) {
		free(p);
		return -EINVAL;
	}
	*slash = '\0';
	*topic = arg + (slash + 1 - p);
	if (slash == p) {
		/* "/TOPIC": the log dir is the root */
		free(p);
		p = strdup("/");
		if (!p)
			return -ENOMEM;
	}
	*dir = p;
	return 0;
}

int sb_cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{"count", required_argument, NULL, 'n'},
		{"raw", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "dump", *topic;
	char *dir = NULL, tname[256];
	uint64_t from = 0, count = UINT64_MAX;
	enum mode m = M_TEXT;
	sb_store *s = NULL;
	sb_log *log;
	int opt, rc, status = SB_EXIT_ERROR, nmode = 0;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (sb_cmd_parse_u64(optarg, &from))
				return sb_cmd_usage_error(cmd, "--from wants an offset, not '%s'", optarg);
			break;
		case 'n':
			if (sb_cmd_parse_u64(optarg, &count))
				return sb_cmd_usage_error(cmd, "--count wants a number, not '%s'", optarg);
			break;
		case 'r': m = M_RAW; nmode++; break;
		case 'j': m = M_JSON; nmode++; break;
		case 'h':
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		case ':':
			return sb_cmd_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return sb_cmd_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (nmode > 1)
		return sb_cmd_usage_error(cmd, "--raw and --json exclude each other");
	if (argc - optind != 1)
		return sb_cmd_usage_error(cmd, "expects one LOG_DIR/TOPIC");
	rc = split_path(argv[optind], &dir, &topic);
	if (rc == -EINVAL)
		return sb_cmd_usage_error(cmd, "'%s' is not LOG_DIR/TOPIC", argv[optind]);
	if (rc) {
		sb_cmd_err(cmd, "%s", sb_strerror(rc));
		return SB_EXIT_ERROR;
	}
	snprintf(tname, sizeof tname, "%.*s", (int)strcspn(topic, "/"), topic);
	if (sb_cmd_check_dir(cmd, dir))
		goto out_free_dir;
	if (!sb_topic_name_valid(tname)) {
		sb_cmd_err(cmd, "%s: not a topic name", argv[optind]);
		goto out_free_dir;
	}
	if (sb_cmd_open_ro(cmd, dir, &s))
		goto out_free_dir;
	rc = sb_store_get(s, tname, &log);
	if (rc) {
		sb_cmd_err(cmd, "%s: %s", argv[optind],
			   rc == -ENOENT ? "no such topic" : sb_strerror(rc));
		goto out_close_store;
	}
	rc = dump_log(cmd, argv[optind], log, from, count, m);
	status = sb_cmd_finish_stdout(cmd, rc ? SB_EXIT_ERROR : SB_EXIT_OK);
out_close_store:
	sb_store_close(s);
out_free_dir:
	free(dir);
	return status;
}
