/*
 * cmd_dump.c - `streambus dump LOG_DIR [TOPIC]` (or LOG_DIR/TOPIC): one line
 * per record with its offset, time, key, size and payload (escaped, or as
 * JSON lines), or (--raw) the payload bytes alone. Without TOPIC, every
 * topic in name order; --follow goes on with what a mount appends. Opens
 * the store read-only: no lock, no writes, safe while mounted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus dump [--from N] [--count K] [--since TIME] [--until TIME]\n"
	"                      [--follow | --keys] [--raw | --json] LOG_DIR [TOPIC]\n"
	"       streambus dump [OPTIONS] LOG_DIR/TOPIC\n"
	"\n"
	"Print the records of TOPIC (without TOPIC: of every topic, in name order,\n"
	"each line starting with topic=NAME), one line each:\n"
	"  offset=N time=YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ key=\"K\"|- [tombstone]\n"
	"  [headers=NAME=\"V\",...] size=BYTES value=\"PAYLOAD\"\n"
	"(tombstone only for a delete marker of its key: rm TOPIC/.keys/K; headers=\n"
	"only for a record with headers). The key, header names and values\n"
	"and the payload are escaped (\\\\ \\\" \\n \\t \\r \\xHH, and in names = ,) where\n"
	"not printable.\n"
	"Reads only; works while LOG_DIR is mounted.\n"
	"\n"
	"  --from N      start at offset N (default: the first retained record)\n"
	"  --count K     print at most K records (per topic)\n"
	"  --since TIME  start at the first record whose time is at or after TIME\n"
	"  --until TIME  stop before the first record whose time is at or after TIME\n"
	"                (record times taken as their running maximum, as .since/\n"
	"                does: a clock step back never hides records nor ends early).\n"
	"                TIME: ISO 8601 (2026-11-29T10:00:00Z, fractions, +01:00, a\n"
	"                date alone: midnight UTC), @EPOCH[.frac], or -90s -15m -2h -7d\n"
	"  --raw         write the payloads only, as they are, one after another\n"
	"                (no offsets, times, keys, separators or newlines)\n"
	"  --keys        the topic as a table: the latest record of each key whose\n"
	"                latest record is not a tombstone, in byte order of the key\n"
	"                (--from, --since and --until are then ignored, --count\n"
	"                counts keys)\n"
	"  --follow      after the records there, print those appended (by a mount)\n"
	"                as they come, as tail -f does (looking every 0.2 s), until\n"
	"                SIGINT or SIGTERM (exit status 0), --count or --until;\n"
	"                wants a TOPIC, not --keys\n"
	"  --json        one JSON object per line: topic, offset, timestamp_ns,\n"
	"                timestamp, key (null if none), tombstone (true, only for a\n"
	"                tombstone), headers (a list of {name, value}, [] for a\n"
	"                record without), size, and value (UTF-8 payloads) or\n"
	"                value_base64 (anything else); a non-UTF-8 key, header name\n"
	"                or header value is key_base64, name_base64, value_base64\n"
	"  -h, --help    this help\n"
	"\n"
	"Exit status: 0 done, 2 usage error, or something not dumped: a record\n"
	"that could not be read, a topic left out (damaged, unreadable), named on\n"
	"stderr (what could be read is printed all the same).\n";

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

/* A header name in a text line: escaped, and = , and space as \xHH too. */
static void put_name(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '=' || c == ',' || c == ' ')
			printf("\\x%02x", c);
		else
			sb_cmd_put_escaped(stdout, &c, 1);
	}
}

/* A record's headers (the block sb_log_read_headers gave: it parses). */
static void print_headers(enum mode m, const uint8_t *hdrs, size_t hlen)
{
	size_t pos = 0;
	sb_header h;
	int first = 1;

	if (m == M_JSON)
		printf("\"headers\": [");
	else if (hlen)
		printf(" headers=");
	while (sb_headers_next(hdrs, hlen, &pos, &h) == 1) {
		if (m == M_JSON) {
			printf("%s{", first ? "" : ", ");
			put_json_bytes("name", (const uint8_t *)h.name, h.name_len);
			printf(", ");
			put_json_bytes("value", h.value, h.value_len);
			printf("}");
		} else {
			if (!first)
				putchar(',');
			put_name(h.name, h.name_len);
			printf("=\"");
			sb_cmd_put_escaped(stdout, h.value, h.value_len);
			putchar('"');
		}
		first = 0;
	}
	if (m == M_JSON)
		printf("], ");
}

/* One record of `topic`, named in text lines only when `all` (every topic). */
static void print_record(enum mode m, const char *topic, int all, const sb_record_info *info,
			 const uint8_t *key, size_t key_len, const uint8_t *hdrs, size_t hlen,
			 const uint8_t *val, size_t len)
{
	char t[64];

	if (m == M_RAW) {
		fwrite(val, 1, len, stdout);
		return;
	}
	sb_cmd_fmt_time(t, sizeof t, info->timestamp_ns, 1);
	if (m == M_JSON) {
		printf("{\"topic\": ");
		sb_cmd_put_json_str(stdout, topic, strlen(topic));
		printf(", \"offset\": %" PRIu64 ", \"timestamp_ns\": %lld, \"timestamp\": \"%s\", ",
		       info->offset, (long long)info->timestamp_ns, t);
		if (info->key_len)
			put_json_bytes("key", key, key_len);
		else
			printf("\"key\": null");
		if (info->flags & SB_RECORD_TOMBSTONE)
			printf(", \"tombstone\": true");
		printf(", ");
		print_headers(m, hdrs, hlen);
		printf("\"size\": %zu, ", len);
		put_json_bytes("value", val, len);
		printf("}\n");
		return;
	}
	if (all)
		printf("topic=%s ", topic);
	printf("offset=%" PRIu64 " time=%s key=", info->offset, t);
	if (info->key_len) {
		putchar('"');
		sb_cmd_put_escaped(stdout, key, key_len);
		putchar('"');
	} else {
		putchar('-');
	}
	if (info->flags & SB_RECORD_TOMBSTONE)
		printf(" tombstone");
	print_headers(m, hdrs, hlen);
	printf(" size=%zu value=\"", len);
	sb_cmd_put_escaped(stdout, val, len);
	printf("\"\n");
}

/*
 * Print records [*fromp, min(*fromp + *countp, end)) of log; 0 or an sb error
 * (printed). *fromp becomes the offset to go on from, *countp what is left
 * of the count (--follow calls again with them).
 */
/* Records that could not be read: each said, but a run of them failing
 * alike (the records of a damaged compressed block) said once with its
 * first and last offsets (a line a record made 100 lines, and the dump
 * then stopped, silently, before the intact blocks after it). */
typedef struct bad_run {
	const char *cmd, *path;
	uint64_t first, last;
	int rc, n;
	int said;         /* lines said */
} bad_run;

#define BAD_SAID_MAX 100

static void bad_run_end(bad_run *b)
{
	if (b->n > 1)
		sb_cmd_err(b->cmd, "%s: records %" PRIu64 "..%" PRIu64 ": the same (%d more)", b->path, b->first + 1,
			   b->last, b->n - 1);
	b->said += b->n > 1;
	b->n = 0;
}

/* 1 when the dump is to stop: too many lines said. */
static int bad_record(bad_run *b, uint64_t off, int rc)
{
	if (b->n && rc == b->rc && off == b->last + 1) {
		b->last = off;
		b->n++;
		return 0;
	}
	bad_run_end(b);
	fflush(stdout);
	sb_cmd_err(b->cmd, "%s: record %" PRIu64 ": %s", b->path, off, sb_strerror(rc));
	b->first = b->last = off;
	b->rc = rc;
	b->n = 1;
	if (++b->said < BAD_SAID_MAX)
		return 0;
	sb_cmd_err(b->cmd, "%s: stopped at record %" PRIu64 " after %d errors (streambus verify names all the damage)",
		   b->path, off, BAD_SAID_MAX);
	return 1;
}

/* --follow: the offsets [from, to) removed (retention, rm) before they
 * were printed, said on stderr (a .log reader gets ENODATA there). */
static void say_gap(const char *cmd, const char *path, uint64_t from, uint64_t to)
{
	fflush(stdout);
	if (to == from + 1)
		sb_cmd_err(cmd, "%s: offset %llu was removed (retention or rm) before it was printed",
			   path, (unsigned long long)from);
	else
		sb_cmd_err(cmd, "%s: offsets %llu..%llu were removed (retention or rm) before they "
			   "were printed", path, (unsigned long long)from, (unsigned long long)to - 1);
}

/* The records [*fromp, end), at most *countp, printed; both advanced.
 * gaps: *fromp is the next offset a follower owes (not the user's --from),
 * and offsets removed from the head before they are printed are said. */
static int dump_log(const char *cmd, const char *path, sb_log *log, int all, uint64_t *fromp,
		    uint64_t *countp, uint64_t end, enum mode m, int gaps)
{
	buf key = {0}, val = {0}, hdrs = {0};
	uint64_t next = sb_log_next(log) < end ? sb_log_next(log) : end;
	uint64_t from = *fromp, count = *countp, off;
	int rc = 0, errors = 0;
	bad_run bad = {.cmd = cmd, .path = path};

	if (from < sb_log_start(log)) {
		if (gaps)
			say_gap(cmd, path, from, sb_log_start(log));
		from = sb_log_start(log);
	}
	for (off = from; off < next && count > 0; off++, count--) {
		sb_record_info info;
		size_t got = 0, key_len = 0, hlen = 0;

		uint64_t present;
		/* a compacted topic has gaps: the next offset holding a record */
		if (sb_log_next_present(log, off, &present) == 0 && present > off)
			off = present;
		else if (off >= sb_log_start(log) && sb_log_next_present(log, off, &present) == -ENOENT)
			break;
		if (off >= next)
			break;
		rc = sb_log_stat(log, off, &info);
		if (rc == -ENOENT && off < sb_log_start(log)) {
			/* The head was removed under us (mounted): skip ahead. */
			if (gaps)
				say_gap(cmd, path, off, sb_log_start(log));
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
		if (info.headers_len && m != M_RAW) {
			rc = buf_reserve(&hdrs, info.headers_len);
			if (!rc)
				rc = sb_log_read_headers(log, off, hdrs.p, hdrs.cap, &hlen);
			if (rc)
				goto out_err;
		}
		bad_run_end(&bad);
		print_record(m, sb_log_name(log), all, &info, key.p, key_len, hdrs.p, hlen, val.p, got);
		if (ferror(stdout))
			break;
		continue;
out_err:
		/* Say which record and go on with the next: the rest may be fine. */
		errors++;
		if (rc == -ENOMEM || bad_record(&bad, off, rc)) {
			off++;
			break;
		}
	}
	bad_run_end(&bad);
	free(key.p);
	free(val.p);
	free(hdrs.p);
	*fromp = off;
	*countp = count;
	if (!ferror(stdout) && count && sb_log_damaged_tail(log) && next >= sb_log_next(log)) {
		/* the read-only open ended the log at damage: what follows is
		 * not here to dump, and the dump is not whole */
		fflush(stdout);
		char dw[640];
		sb_cmd_err(cmd, "%s: records from offset %" PRIu64 " on not dumped: the log is damaged at %s "
			   "(streambus verify names it; streambus recover --cut drops the damaged records)", path,
			   sb_log_next(log), sb_cmd_damage_where(log, dw, sizeof dw));
		errors++;
	}
	return errors ? rc ? rc : SB_ECORRUPT : 0;
}

/* ---- --keys: the latest record of each key ------------------------------ */

typedef struct keys_ctx {
	const char *cmd, *path;
	sb_log *log;
	int all, errors, rc;
	uint64_t count;
	enum mode m;
	buf val, hdrs, key;
	uint64_t stale;   /* keys whose entry names a record of another key */
} keys_ctx;

/* Keys with a wrong entry named one by one; the rest counted (the
 * summary's text says 10). */
#define STALE_SHOWN 10

/* Does record `offset` carry `key` (the key index is derived data: a
 * table that does not match the log names records of other keys)? 0, or
 * -ESTALE, or the read's error. */
static int same_key(keys_ctx *c, uint64_t offset, const void *key, size_t key_len)
{
	size_t kl;
	int rc = buf_reserve(&c->key, key_len ? key_len : 1);

	if (!rc)
		rc = sb_log_read_key(c->log, offset, c->key.p, c->key.cap, &kl);
	if (!rc && (kl != key_len || memcmp(c->key.p, key, key_len)))
		rc = -ESTALE;
	return rc;
}

static int dump_key(void *arg, const void *key, size_t key_len, const sb_record_info *ki)
{
	keys_ctx *c = arg;
	sb_record_info info;
	size_t got = 0, hlen = 0;
	int rc;

	if (!c->count)
		return 1;
	c->count--;
	rc = buf_reserve(&c->val, ki->value_len ? ki->value_len : 1);
	if (!rc)
		rc = sb_log_read(c->log, ki->offset, 0, c->val.p, ki->value_len, &got, &info);
	if (!rc && info.headers_len && c->m != M_RAW && !(rc = buf_reserve(&c->hdrs, info.headers_len)))
		rc = sb_log_read_headers(c->log, ki->offset, c->hdrs.p, c->hdrs.cap, &hlen);
	if (!rc)
		rc = same_key(c, ki->offset, key, key_len);
	if (rc == -ENOENT)
		return 0; /* removed from the head meanwhile */
	if (rc == -ESTALE) {
		/* the first few named, then counted (dump_keys) */
		if (c->stale++ < STALE_SHOWN) {
			fflush(stdout);
			sb_cmd_err(c->cmd, "%s: key %.*s: the key index names a record of another key (record %"
				   PRIu64 "): not printed", c->path, (int)(key_len > 200 ? 200 : key_len),
				   (const char *)key, ki->offset);
		}
		c->rc = SB_ECORRUPT;
		return 0;
	}
	if (rc) {
		fflush(stdout);
		sb_cmd_err(c->cmd, "%s: record %" PRIu64 ": %s", c->path, ki->offset, sb_strerror(rc));
		c->rc = rc;
		return rc == -ENOMEM || ++c->errors >= 100 ? rc : 0;
	}
	print_record(c->m, sb_log_name(c->log), c->all, &info, key, key_len, c->hdrs.p, hlen, c->val.p, got);
	return ferror(stdout) ? -EIO : 0;
}

static int dump_keys(const char *cmd, const char *path, sb_log *log, int all, uint64_t count, enum mode m)
{
	keys_ctx c = {.cmd = cmd, .path = path, .log = log, .all = all, .count = count, .m = m};
	char dw[640];
	int rc;

	if (sb_log_damaged_tail(log)) {
		/* the records past the damage may hold a key's latest record:
		 * no key's latest record is known, none is printed */
		sb_cmd_err(cmd, "%s: keys not dumped: the log is damaged at %s and its records from there on "
			   "cannot be read, so no key's latest record is known (streambus verify names the "
			   "damage; streambus recover --cut drops the damaged records)", path,
			   sb_cmd_damage_where(log, dw, sizeof dw));
		return SB_ECORRUPT;
	}
	rc = sb_log_list_keys(log, NULL, 0, dump_key, &c);

	free(c.val.p);
	free(c.hdrs.p);
	free(c.key.p);
	if (c.stale)
		sb_cmd_err(cmd, "%s: %" PRIu64 " key%s named records of other keys: not printed (%s; the key "
			   "index is derived data: 'streambus recover' rebuilds it from the log)", path, c.stale,
			   c.stale == 1 ? "" : "s", c.stale > STALE_SHOWN ? "the first 10 named" : "named above");
	if (rc < 0 && rc != -EIO && !c.rc) {
		sb_cmd_err(cmd, "%s: the key index: %s", path, sb_strerror(rc));
		c.rc = rc;
	}
	return c.rc;
}

typedef struct dump_args {
	const char *cmd;
	const char *dir;
	int all, keys, follow;
	uint64_t from, count;
	int has_since, has_until;
	int64_t since, until;   /* ns since the epoch */
	enum mode m;
	int rc;         /* the first error */
} dump_args;

static int dump_one(dump_args *a, sb_log *log)
{
	char path[4400];
	int rc;

	uint64_t from = a->from, count = a->count, end = UINT64_MAX, at;

	snprintf(path, sizeof path, "%s/%s", a->dir, sb_log_name(log));
	/* Where the moments are: a binary search of the time index each. */
	rc = a->has_since ? sb_log_seek_time(log, a->since, &at) : 0;
	if (!rc && a->has_since && at > from)
		from = at;
	if (!rc && a->has_until && !(rc = sb_log_seek_time(log, a->until, &at)))
		end = at;
	if (rc) {
		sb_cmd_err(a->cmd, "%s: finding a time: %s", path, sb_strerror(rc));
		if (!a->rc)
			a->rc = rc;
		return 0;
	}
	if (a->keys)
		rc = dump_keys(a->cmd, path, log, a->all, a->count, a->m);
	else
		rc = dump_log(a->cmd, path, log, a->all, &from, &count, end, a->m, 0);
	if (rc && !a->rc)
		a->rc = rc;
	return ferror(stdout) ? -EIO : 0;
}

typedef struct names {
	char **v;
	size_t n, cap;
	int err;
} names;

static int add_name(void *arg, const char *name, sb_log *log)
{
	names *ns = arg;

	(void)log;
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 16;
		char **t = realloc(ns->v, nc * sizeof *t);
		if (!t)
			return ns->err = -ENOMEM;
		ns->v = t;
		ns->cap = nc;
	}
	if (!(ns->v[ns->n] = strdup(name)))
		return ns->err = -ENOMEM;
	ns->n++;
	return 0;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every topic of s in name order. */
/* A topic the read-only open refused (its warning said why): counted. */
static int count_refused(void *arg, const char *name, int err, const char *msg)
{
	(void)name, (void)err, (void)msg;
	++*(size_t *)arg;
	return 0;
}

/* Every topic in name order; a topic left out (damaged, unreadable: the
 * open warned) makes the dump fail (a.rc) once the others are printed. */
static int dump_all(dump_args *a, sb_store *s)
{
	names ns = {0};
	size_t nrefused = 0;
	int rc = 0;

	sb_store_list(s, add_name, &ns);
	if (ns.err) {
		sb_cmd_err(a->cmd, "%s: %s", a->dir, sb_strerror(ns.err));
		rc = ns.err;
		goto out_free;
	}
	if (ns.n)
		qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);
	for (size_t i = 0; i < ns.n && !rc; i++) {
		sb_log *log;

		if (sb_store_get(s, ns.v[i], &log) == 0)
			rc = dump_one(a, log);
	}
	sb_store_list_refused(s, count_refused, &nrefused);
	if (!rc && nrefused) {
		sb_cmd_err(a->cmd, "%s: %zu topic%s left out (see the warnings above)", a->dir, nrefused,
			   nrefused == 1 ? "" : "s");
		if (!a->rc)
			a->rc = -EIO;
	}
out_free:
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	return rc;
}

/* ---- --follow: the records appended meanwhile, until a signal -------- */

/* How often --follow looks for new records, and how many records it prints
 * between looks for SIGINT/SIGTERM while catching up. */
#define FOLLOW_POLL_MS 200
#define FOLLOW_CHUNK 4096u

/* Open dir again, read-only, its topic `topic` alone. Quietly: what the
 * first open warned about (a torn tail a mount would cut) is not repeated
 * at every look. */
static int reopen_quiet(const char *dir, const char *topic, sb_store **out)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.read_only = 1;
	o.no_flusher = 1;
	o.no_keys = 1; /* records alone: --follow excludes --keys */
	o.only_topic = topic;
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	return sb_store_open(dir, &o, out);
}

/* Has SIGINT or SIGTERM come (waiting up to ms for one)? Takes it. */
static int stop_signal(int sfd, int ms)
{
	struct pollfd p = {.fd = sfd, .events = POLLIN};
	struct signalfd_siginfo si;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return read(sfd, &si, sizeof si) == (ssize_t)sizeof si;
}

/*
 * Print the records of `topic` in *sp from --from/--since on, then those
 * appended since, as `tail -f` does: a read-only store sees the log as it
 * was opened, so it is opened again (*sp replaced; the caller closes the
 * last) every FOLLOW_POLL_MS. Ends at SIGINT or SIGTERM (0), at --count
 * or --until, when the topic is removed or cannot be read on (an error,
 * printed).
 */
static int dump_follow(dump_args *a, sb_store **sp, const char *topic, const char *where)
{
	uint64_t from = a->from, count = a->count, end = UINT64_MAX, at;
	sigset_t stop, old;
	sb_log *log;
	int sfd, rc = 0, first = 1;

	sigemptyset(&stop);
	for (int i = 0; i < 2; i++) {
		int sig = i ? SIGTERM : SIGINT;
		struct sigaction sa;

		/* one that is ignored (nohup, a background job) stays so */
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&stop, sig);
	}
	sigprocmask(SIG_BLOCK, &stop, &old);
	sfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (sfd < 0) {
		rc = -errno;
		sb_cmd_err(a->cmd, "--follow: signalfd: %s", strerror(-rc));
		goto out_mask;
	}
	for (;;) {
		rc = sb_store_get(*sp, topic, &log);
		if (rc) {
			sb_cmd_err(a->cmd, "%s: %s", where, rc != -ENOENT ? sb_strerror(rc) : first
				   ? "no such topic" : "the topic was removed: nothing more to follow");
			break;
		}
		rc = first && a->has_since ? sb_log_seek_time(log, a->since, &at) : 0;
		if (!rc && first && a->has_since && at > from)
			from = at;
		/* --until: the end, once a record reaches it (at < next) */
		if (!rc && a->has_until && end == UINT64_MAX && !(rc = sb_log_seek_time(log, a->until, &at)) &&
		    at < sb_log_next(log))
			end = at;
		if (rc) {
			sb_cmd_err(a->cmd, "%s: finding a time: %s", where, sb_strerror(rc));
			break;
		}
		int owed = !first; /* from the second look on, what it printed up to */
		first = 0;
		/* what is there, a chunk at a time, stopping at a signal */
		for (uint64_t was = from - 1; count && from < end && from < sb_log_next(log) && from != was;) {
			uint64_t chunk = end - from > FOLLOW_CHUNK ? from + FOLLOW_CHUNK : end;
			int drc;

			was = from; /* a compacted topic's last offsets may be gaps */
			drc = dump_log(a->cmd, where, log, 0, &from, &count, chunk, a->m, owed);
			if (drc && !a->rc)
				a->rc = drc;
			if (ferror(stdout) || stop_signal(sfd, 0))
				goto out_close;
		}
		if (!count || from >= end)
			break;
		if (sb_log_damaged_tail(log) && from >= sb_log_next(log))
			break; /* dump_log said where; no record will come past it */
		if (fflush(stdout) || stop_signal(sfd, FOLLOW_POLL_MS))
			break;
		sb_store_close(*sp);
		*sp = NULL;
		rc = reopen_quiet(a->dir, topic, sp);
		if (rc) {
			sb_cmd_err(a->cmd, "%s: %s", a->dir, sb_strerror(rc));
			break;
		}
	}
out_close:
	close(sfd);
out_mask:
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int sb_cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{"count", required_argument, NULL, 'n'},
		{"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'},
		{"raw", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"keys", no_argument, NULL, 'k'},
		{"follow", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "dump";
	char where[4400];
	dump_args a = {.cmd = "dump", .count = UINT64_MAX, .m = M_TEXT};
	sb_cmd_where w;
	sb_store *s = NULL;
	sb_log *log;
	int opt, rc, status = SB_EXIT_ERROR, nmode = 0;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (sb_cmd_parse_u64(optarg, &a.from))
				return sb_cmd_usage_error(cmd, "--from wants an offset, not '%s'", optarg);
			break;
		case 'n':
			if (sb_cmd_parse_u64(optarg, &a.count))
				return sb_cmd_usage_error(cmd, "--count wants a number, not '%s'", optarg);
			break;
		case 's':
		case 'u': {
			struct timespec now;
			int64_t t;
			clock_gettime(CLOCK_REALTIME, &now);
			int trc = sb_time_parse(optarg, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, &t);
			if (trc)
				return sb_cmd_usage_error(cmd, "--%s wants a time (2026-11-29T10:00:00Z, "
							  "@EPOCH, -15m, ...), not '%s'",
							  opt == 's' ? "since" : "until", optarg);
			if (opt == 's') {
				a.has_since = 1;
				a.since = t;
			} else {
				a.has_until = 1;
				a.until = t;
			}
			break;
		}
		case 'r': a.m = M_RAW; nmode++; break;
		case 'j': a.m = M_JSON; nmode++; break;
		case 'k': a.keys = 1; break;
		case 'F': a.follow = 1; break;
		case 'h':
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		case ':':
			return sb_cmd_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return sb_cmd_usage_error(cmd, "unknown option '%s'", sb_cmd_bad_option(argc, argv));
		}
	}
	if (nmode > 1)
		return sb_cmd_usage_error(cmd, "--raw and --json exclude each other");
	if (a.follow && a.keys)
		return sb_cmd_usage_error(cmd, "--follow and --keys exclude each other");
	if (sb_cmd_log_dir_args(cmd, argc, argv, &w))
		return SB_EXIT_ERROR;
	a.dir = w.dir;
	a.all = !w.has_topic;
	if (a.follow && a.all)
		return sb_cmd_usage_error(cmd, "--follow follows one topic: name it (LOG_DIR TOPIC or "
					  "LOG_DIR/TOPIC), not '%s' alone", w.dir);
	/* records alone need no key index (its tables read, the log replayed
	 * past them); a topic named, that topic alone (--follow opens again
	 * every 200 ms) */
	sb_cmd_ro ro = {.report = sb_cmd_ro_report, .arg = (void *)cmd, .no_keys = !a.keys,
			.topic = w.has_topic ? w.topic : NULL};
	if (sb_cmd_open_ro_with(cmd, w.dir, &ro, &s))
		return SB_EXIT_ERROR;
	if (a.follow) {
		rc = dump_follow(&a, &s, w.topic, sb_cmd_where_str(&w, where, sizeof where));
	} else if (a.all) {
		rc = dump_all(&a, s);
	} else {
		rc = sb_store_get(s, w.topic, &log);
		if (rc) {
			sb_cmd_err(cmd, "%s: %s", sb_cmd_where_str(&w, where, sizeof where),
				   rc == -ENOENT ? "no such topic" : sb_strerror(rc));
			goto out_close_store;
		}
		rc = dump_one(&a, log);
	}
	status = sb_cmd_finish_stdout(cmd, rc || a.rc ? SB_EXIT_ERROR : SB_EXIT_OK);
out_close_store:
	if (s)
		sb_store_close(s);
	return status;
}
