/*
 * fuzz_ops - the daemon's file operations without a kernel: a sequence of
 * operations decoded from the input is driven on the functions right under
 * the FUSE handlers of fs/ (what op_mkdir, op_open, op_write, op_read,
 * op_setxattr, op_rename, op_unlink, op_flush and op_release call), over a
 * real store in a scratch directory on tmpfs.
 *
 * Operations: make a topic (a known name or fuzzed bytes); open .log for
 * writing (O_APPEND or not, as op_open does) and write to it (at its write
 * position, at the end or anywhere; fuzzed bytes or a fuzzed pattern
 * repeated, so long lines and many lines come cheap) and close it; create a
 * file (the next offset, a digits name, a temporary name, .log, fuzzed
 * bytes), write it at any offset, read it back, set an xattr (key, offset,
 * timestamp, another user.streambus.* or user.* name, a fuzzed name; fuzzed
 * value; a user.streambus.header.NAME set with XATTR_CREATE, XATTR_REPLACE
 * or neither, or removed: names of 1, 12, 255 and 256 bytes), rename it (to
 * the same kinds of names, NOREPLACE or not), flush and close it, unlink and
 * look up names; parse record names; attributes of every kind of inode.
 *
 * Properties: no crash, sanitizer report or leak; a write to .log away from
 * its write position and its end is refused (EPERM); a write accepted on a
 * .log handle with no earlier error appends exactly its complete lines, one
 * record each, and its close appends exactly the rest; every record a .log
 * write appends is one line of at most max_record_bytes; a file being
 * created reads back what was written to it; a record its flush, close or
 * rename appends holds exactly its bytes (and the key set by xattr); a
 * header set or removed answers as setxattr(2) would (EEXIST, ENODATA,
 * EINVAL for a name of 0 or 256+ bytes, or ENOENT once the file has no
 * name), and the record appended next lists (listxattr, in the order first
 * set) and gets (getxattr) exactly the headers the model holds, with their
 * values, its offset and key, and no other header; a record
 * name parses only as 1..20 digits, to its value; after unmount
 * (sbfs_shutdown) every topic directory passes sb_verify_topic.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "backend_store.h"
#include "fs.h"
#include "util.h"
#include "verify.h"

#define MAX_REC 2048u
#define NTOPIC 3
#define NLOG 3
#define NFILE 6
#define MAX_OPS 64
#define NHDR MAX_OPS
#define KEY_CAP 300u /* a record's key: a name (< 300 bytes) or an xattr value (< 256) */

/* A header of the model: the name after user.streambus.header. */
typedef struct hdr {
	char name[300];
	uint8_t val[256];
	size_t vlen;
} hdr;

typedef struct logh {
	sbfs_fh *h;
	int append, known;  /* known: no error yet, the model below holds */
	uint64_t wpos;
	char *part;         /* the model's partial line */
	size_t plen;
} logh;

typedef struct file {
	sbfs_pending *p;
	fuse_ino_t ino;
	int t;              /* topic slot */
	char name[300];
	uint8_t *buf;       /* the model: bytes since the last append */
	size_t len, cap;
	uint64_t base;
	int known;          /* no failed write (then nothing is appended) */
	uint8_t key[64];
	size_t key_len;
	int key_set;
	hdr h[NHDR];        /* the headers its next record gets, in the order first set */
	int nh;
} file;

typedef struct world {
	sbfs fs;
	sbfs_config cfg;
	sbfs_tentry *te[NTOPIC];
	logh lh[NLOG];
	file f[NFILE];
	fz_in in;
} world;

static const char *const tnames[NTOPIC] = {"a", "orders", "t-2"};

static sbfs_topic *T(world *w, int t) { return sbfs_topic_handle(&w->fs, w->te[t]); }

static uint64_t next_of(world *w, int t)
{
	sbfs_bounds bd;
	FZ_CHECK(sbfs_bounds_of(&w->fs, w->te[t], T(w, t), &bd) == 0, "bounds");
	return bd.next;
}

static uint64_t stream_end_of(world *w, int t)
{
	sbfs_bounds bd;
	FZ_CHECK(sbfs_bounds_of(&w->fs, w->te[t], T(w, t), &bd) == 0, "bounds");
	return bd.stream_end;
}

/* Record `off` of topic t: its payload (malloc'ed) and key. */
static uint8_t *read_rec(world *w, int t, uint64_t off, size_t *len, uint8_t *key, size_t *klen)
{
	sbfs_recinfo ri;
	FZ_CHECK(w->fs.b->ops->stat_record(T(w, t), off, 0, &ri) == 0, "record %llu not there",
		 (unsigned long long)off);
	uint8_t *b = malloc(ri.value_len + 1);
	FZ_CHECK(w->fs.b->ops->read(T(w, t), off, 0, b, ri.value_len, len) == 0 && *len == ri.value_len,
		 "record %llu unreadable", (unsigned long long)off);
	if (key)
		FZ_CHECK(w->fs.b->ops->read_key(T(w, t), off, key, KEY_CAP, klen) == 0 && *klen <= KEY_CAP, "key unreadable");
	return b;
}

/* A name of one of the kinds users make. */
static void gen_name(world *w, int t, char *out, size_t cap)
{
	uint8_t kind = fz_u8(&w->in);
	size_t n;
	const uint8_t *p;

	switch (kind % 8) {
	case 0: /* the next offset */
		snprintf(out, cap, "%llu", (unsigned long long)(w->te[t] ? next_of(w, t) : 0));
		break;
	case 1: /* the next offset, zero-padded as listed */
		sbfs_fmt_offset(out, w->te[t] ? next_of(w, t) : 0);
		break;
	case 2:
		snprintf(out, cap, ".f%u.swp", kind >> 3);
		break;
	case 3:
		snprintf(out, cap, "f%u.tmp", kind >> 3);
		break;
	case 4:
		snprintf(out, cap, "file%u", kind >> 3);
		break;
	case 5:
		snprintf(out, cap, ".log");
		break;
	case 6:
		snprintf(out, cap, "%llu", (unsigned long long)fz_u64(&w->in));
		break;
	default:
		p = fz_bytes(&w->in, fz_u8(&w->in) % 280, &n);
		if (n > cap - 1)
			n = cap - 1;
		memcpy(out, p, n);
		out[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (out[i] == '/')
				out[i] = '_';
		if (!out[0])
			snprintf(out, cap, "x");
		break;
	}
}

/* Data for a write: fuzzed bytes, or a fuzzed pattern repeated. */
static uint8_t *gen_data(world *w, size_t *size)
{
	uint8_t how = fz_u8(&w->in);
	size_t n;
	const uint8_t *p = fz_bytes(&w->in, how & 1 ? fz_u8(&w->in) % 17 : fz_u16(&w->in) % 600, &n);
	size_t total = how & 1 ? (n ? fz_u16(&w->in) % 9000 : 0) : n;
	uint8_t *b = malloc(total + 1);

	for (size_t i = 0; i < total; i++)
		b[i] = how & 1 ? p[i % n] : p[i];
	*size = total;
	return b;
}

static void op_mkdir(world *w)
{
	uint8_t sel = fz_u8(&w->in);
	sbfs_tentry *te;
	char name[300];

	if (sel % 4 < NTOPIC) {
		int rc = sbfs_topic_create(&w->fs, tnames[sel % 4], &te);
		FZ_CHECK(rc == 0 || rc == -EEXIST, "mkdir %s: %d", tnames[sel % 4], rc);
		if (rc == 0 || !w->te[sel % 4])
			FZ_CHECK(sbfs_topic_by_name(&w->fs, tnames[sel % 4], &w->te[sel % 4]) == 0, "lookup");
		return;
	}
	gen_name(w, 0, name, sizeof name);
	if (sbfs_topic_create(&w->fs, name, &te) == 0)
		FZ_CHECK(sb_topic_name_valid(name), "topic %s made, the store refuses such names", name);
}

static int pick_topic(world *w)
{
	int t = fz_u8(&w->in) % NTOPIC;
	return w->te[t] ? t : -1;
}

static void log_open(world *w)
{
	int t = pick_topic(w), i = fz_u8(&w->in) % NLOG;
	logh *l = &w->lh[i];
	sbfs_bounds bd;

	if (t < 0 || l->h)
		return;
	/* op_open of .log, O_WRONLY [| O_APPEND] */
	l->h = sbfs_fh_new(&w->fs, K_LOG, w->te[t]);
	FZ_CHECK(l->h, "fh_new");
	FZ_CHECK(sbfs_bounds_of(&w->fs, w->te[t], T(w, t), &bd) == 0, "bounds");
	l->h->writer = 1;
	l->h->append = l->append = fz_u8(&w->in) & 1;
	l->h->base = bd.stream_start;
	l->h->wpos = l->wpos = bd.stream_end - l->h->base;
	l->known = 1;
	l->plen = 0;
}

static int topic_of_handle(world *w, sbfs_fh *h)
{
	for (int t = 0; t < NTOPIC; t++)
		if (w->te[t] == h->te)
			return t;
	fz_fail("a handle of no topic");
}

/* The records [from, to) of topic t appended by .log writes: lines. Returns
 * their concatenation (malloc'ed) in *all. */
static void check_lines(world *w, int t, uint64_t from, uint64_t to, uint8_t **all, size_t *alen,
			int last_may_be_partial)
{
	*all = malloc(1);
	*alen = 0;
	for (uint64_t o = from; o < to; o++) {
		size_t n;
		uint8_t *r = read_rec(w, t, o, &n, NULL, NULL);
		uint8_t *nl = memchr(r, '\n', n);
		FZ_CHECK(n <= MAX_REC, ".log record %llu of %zu bytes", (unsigned long long)o, n);
		FZ_CHECK((nl && nl == r + n - 1) || (!nl && last_may_be_partial && o + 1 == to && n),
			 ".log record %llu is not one line", (unsigned long long)o);
		*all = realloc(*all, *alen + n + 1);
		memcpy(*all + *alen, r, n);
		*alen += n;
		free(r);
	}
}

static void log_write(world *w)
{
	logh *l = &w->lh[fz_u8(&w->in) % NLOG];
	uint8_t where = fz_u8(&w->in);
	uint64_t roff = fz_u16(&w->in);
	size_t size;
	uint8_t *data = gen_data(w, &size);

	if (!l->h) {
		free(data);
		return;
	}
	int t = topic_of_handle(w, l->h);
	uint64_t next0 = next_of(w, t), end = stream_end_of(w, t) - l->h->base;
	uint64_t off = where % 3 == 0 ? l->wpos : where % 3 == 1 ? end : roff;
	size_t took = 0;
	int rc = sbfs_fh_write(&w->fs, l->h, (const char *)data, size, (off_t)off, &took);
	uint64_t next1 = next_of(w, t);
	uint8_t *all;
	size_t alen;

	if (!l->append && off != l->wpos && off != end)
		FZ_CHECK(rc == -EPERM, "a write into the middle of .log: %d", rc);
	check_lines(w, t, next0, next1, &all, &alen, 0);
	if (rc == 0 && took < size) {
		/* a line over the limit ended in it: taken through its
		 * newline, nothing appended (a short count), the close fails */
		FZ_CHECK(next1 == next0, "a short .log write appended %llu records",
			 (unsigned long long)(next1 - next0));
		l->wpos = off + took;
		l->known = 0;
	} else if (rc == 0) {
		l->wpos = off + size;
		if (l->known) {
			/* exactly the complete lines of part + data */
			size_t tot = l->plen + size, cut = 0;
			uint8_t *cat = malloc(tot + 1);
			if (l->plen)
				memcpy(cat, l->part, l->plen);
			if (size)
				memcpy(cat + l->plen, data, size);
			for (size_t i = 0; i < tot; i++)
				if (cat[i] == '\n')
					cut = i + 1;
			FZ_CHECK(alen == cut && (!cut || !memcmp(all, cat, cut)),
				 ".log write appended %zu bytes, its complete lines are %zu", alen, cut);
			l->part = realloc(l->part, tot - cut + 1);
			memcpy(l->part, cat + cut, tot - cut);
			l->plen = tot - cut;
			free(cat);
		}
	} else {
		FZ_CHECK(next1 == next0 || rc == -EFBIG, "a failed .log write (%d) appended", rc);
		l->known = 0;
	}
	free(all);
	free(data);
}

static void log_close(world *w)
{
	logh *l = &w->lh[fz_u8(&w->in) % NLOG];
	uint8_t *all;
	size_t alen;

	if (!l->h)
		return;
	int t = topic_of_handle(w, l->h);
	uint64_t next0 = next_of(w, t);
	/* op_release of a .log writer */
	int rc = sbfs_log_flush_partial(&w->fs, l->h);
	uint64_t next1 = next_of(w, t);
	check_lines(w, t, next0, next1, &all, &alen, 1);
	if (rc == 0 && l->known)
		FZ_CHECK(alen == l->plen && (!alen || !memcmp(all, l->part, alen)), "close appended %zu bytes, not its %zu",
			 alen, l->plen);
	free(all);
	sbfs_fh_free(&w->fs, l->h);
	l->h = NULL;
	free(l->part);
	l->part = NULL;
	l->plen = 0;
}

static void file_create(world *w)
{
	int t = pick_topic(w), i = fz_u8(&w->in) % NFILE;
	file *f = &w->f[i];
	struct fuse_entry_param e;
	char name[300];

	if (t < 0 || f->p) {
		fz_u8(&w->in);
		return;
	}
	gen_name(w, t, name, sizeof name);
	if (sbfs_pending_create(&w->fs, sbfs_ino(w->te[t]->id, SBFS_L_DIR), name, 0644, 1, &e, &f->p))
		return;
	f->ino = e.ino;
	f->t = t;
	snprintf(f->name, sizeof f->name, "%s", name);
	f->len = 0;
	f->base = 0;
	f->known = 1;
	f->key_set = 0;
	f->nh = 0;
}

static file *pick_file(world *w)
{
	file *f = &w->f[fz_u8(&w->in) % NFILE];
	return f->p ? f : NULL;
}

static int hdr_find(const file *f, const char *name)
{
	for (int i = 0; i < f->nh; i++)
		if (!strcmp(f->h[i].name, name))
			return i;
	return -1;
}

/* Record `off` that file f appended, through listxattr and getxattr (what
 * op_listxattr and op_getxattr reply): its offset, its key, and exactly the
 * headers of the model, in order, with their values. */
static void check_xattrs(world *w, const file *f, uint64_t off, const uint8_t *key, size_t klen)
{
	fuse_ino_t ino = sbfs_ino(w->te[f->t]->id, SBFS_L_REC0 + off);
	char *names, *v, num[32];
	size_t len, n;
	int i = 0, rc;

	FZ_CHECK((rc = sbfs_xattr_list(&w->fs, ino, &names, &len)) == 0, "listxattr of record %llu: %d",
		 (unsigned long long)off, rc);
	for (size_t at = 0; at < len; at += strlen(names + at) + 1) {
		const char *nm = names + at;
		FZ_CHECK(memchr(nm, '\0', len - at), "listxattr: a name without its NUL");
		if (strncmp(nm, SBFS_XA_HEADER, strlen(SBFS_XA_HEADER)))
			continue;
		FZ_CHECK(i < f->nh && !strcmp(nm + strlen(SBFS_XA_HEADER), f->h[i].name),
			 "record %llu lists header %d as %.40s, the model %.40s", (unsigned long long)off, i, nm,
			 i < f->nh ? f->h[i].name : "(none: fewer headers)");
		i++;
	}
	FZ_CHECK(i == f->nh, "record %llu lists %d headers, the model has %d", (unsigned long long)off, i, f->nh);
	free(names);
	for (i = 0; i < f->nh; i++) {
		char xn[sizeof SBFS_XA_HEADER + sizeof f->h[i].name];
		snprintf(xn, sizeof xn, "%s%s", SBFS_XA_HEADER, f->h[i].name);
		FZ_CHECK((rc = sbfs_xattr_get(&w->fs, ino, xn, &v, &n)) == 0, "getxattr %.60s: %d", xn, rc);
		FZ_CHECK(n == f->h[i].vlen && (!n || !memcmp(v, f->h[i].val, n)),
			 "header %.60s of record %llu: %zu bytes, the model's %zu", xn, (unsigned long long)off, n,
			 f->h[i].vlen);
		free(v);
	}
	rc = sbfs_xattr_get(&w->fs, ino, SBFS_XA_HEADER "never-set", &v, &n);
	FZ_CHECK(rc == -ENODATA, "getxattr of a header never set: %d", rc);
	FZ_CHECK(sbfs_xattr_get(&w->fs, ino, "user.streambus.offset", &v, &n) == 0, "getxattr offset");
	snprintf(num, sizeof num, "%llu", (unsigned long long)off);
	FZ_CHECK(n == strlen(num) && !memcmp(v, num, n), "user.streambus.offset is not %s", num);
	free(v);
	rc = sbfs_xattr_get(&w->fs, ino, "user.streambus.key", &v, &n);
	if (klen) {
		FZ_CHECK(rc == 0 && n == klen && !memcmp(v, key, n), "user.streambus.key is not the record's key");
		free(v);
	} else {
		FZ_CHECK(rc == -ENODATA, "user.streambus.key of a record without a key: %d", rc);
	}
}

/* After an operation that may append file f: a new record is its bytes. */
static void check_commit(world *w, file *f, uint64_t next0)
{
	uint64_t next1 = next_of(w, f->t);
	uint8_t key[KEY_CAP];
	size_t n, klen;

	if (next1 == next0)
		return;
	uint8_t *r = read_rec(w, f->t, next1 - 1, &n, key, &klen);
	FZ_CHECK(f->known, "a file with a failed write was appended");
	FZ_CHECK(n == f->len && (!n || !memcmp(r, f->buf, n)), "record %llu (%zu bytes) is not the file's %zu bytes",
		 (unsigned long long)(next1 - 1), n, f->len);
	if (f->key_set)
		FZ_CHECK(klen == f->key_len && !memcmp(key, f->key, klen), "record key is not the xattr's");
	check_xattrs(w, f, next1 - 1, key, klen);
	free(r);
	f->base += f->len;
	f->len = 0;
	f->nh = 0; /* the headers were that record's */
}

static void file_write(world *w)
{
	file *f = pick_file(w);
	uint8_t where = fz_u8(&w->in);
	uint64_t roff = fz_u16(&w->in);
	size_t size;
	uint8_t *data = gen_data(w, &size);

	if (!f) {
		free(data);
		return;
	}
	uint64_t off = where & 1 ? f->base + f->len : f->base + roff % (f->len + 64);
	if (where & 2)
		off = roff; /* anywhere, before the base too */
	int rc = sbfs_pending_write(&w->fs, f->p, (const char *)data, size, (off_t)off);
	if (rc == 0) {
		FZ_CHECK(off >= f->base, "a write before the appended part was accepted");
		size_t at = (size_t)(off - f->base);
		if (at + size > f->cap) {
			f->cap = at + size;
			f->buf = realloc(f->buf, f->cap);
		}
		if (at > f->len)
			memset(f->buf + f->len, 0, at - f->len);
		if (size)
			memcpy(f->buf + at, data, size);
		if (at + size > f->len)
			f->len = at + size;
	} else if (rc == -EFBIG) {
		f->known = 0;
	}
	free(data);
}

static void file_read(world *w)
{
	file *f = pick_file(w);
	uint64_t off = fz_u16(&w->in), size = fz_u16(&w->in) % 4096;
	char buf[4096];
	size_t n;

	if (!f)
		return;
	off += fz_u8(&w->in) & 1 ? f->base : 0;
	int rc = sbfs_pending_read(f->p, (off_t)off, buf, size, &n);
	if (off < f->base) {
		FZ_CHECK(rc == -EPERM, "read of an appended part: %d", rc);
		return;
	}
	FZ_CHECK(rc == 0, "read: %d", rc);
	uint64_t at = off - f->base;
	size_t want = at >= f->len ? 0 : f->len - at < size ? f->len - at : size;
	if (f->known)
		FZ_CHECK(n == want && (!n || !memcmp(buf, f->buf + at, n)), "a file reads back %zu bytes, not its %zu", n,
			 want);
}

/* setxattr (flags) or removexattr of header xattr `name` on file f, against
 * the model: the answer setxattr(2) gives, and the model follows it. */
static void header_xattr(world *w, file *f, const char *name, const uint8_t *v, size_t n, int flags, int remove)
{
	const char *hn = name + strlen(SBFS_XA_HEADER);
	size_t hl = strlen(hn);
	int at = hdr_find(f, hn), want, rc;

	if (remove) {
		want = at < 0 ? -ENODATA : 0;
		rc = sbfs_pending_removexattr(&w->fs, f->ino, name);
	} else {
		want = hl == 0 || hl > 255 ? -EINVAL
		       : (flags & XATTR_CREATE) && at >= 0 ? -EEXIST
		       : (flags & XATTR_REPLACE) && at < 0 ? -ENODATA : 0;
		rc = sbfs_pending_setxattr(&w->fs, f->ino, flags, name, (const char *)v, n);
	}
	/* ENOENT: the file has no name any more (unlinked, replaced, or its
	 * record appended by a rename): nothing changed */
	FZ_CHECK(rc == want || rc == -ENOENT, "%sxattr %.60s (flags %d, %s in the model): %d, not %d",
		 remove ? "remove" : "set", name, flags, at < 0 ? "not" : "set", rc, want);
	if (rc)
		return;
	if (remove) {
		memmove(f->h + at, f->h + at + 1, (size_t)(f->nh - at - 1) * sizeof f->h[0]);
		f->nh--;
		return;
	}
	if (at < 0) {
		FZ_CHECK(f->nh < NHDR, "more headers than operations");
		at = f->nh++;
		snprintf(f->h[at].name, sizeof f->h[at].name, "%s", hn);
	}
	memcpy(f->h[at].val, v, n);
	f->h[at].vlen = n;
}

static void file_setxattr(world *w)
{
	static const char *const names[] = {"user.streambus.key", "user.streambus.offset",
					    "user.streambus.timestamp", NULL /* a header */,
					    "user.mime", "trusted.x", "security.selinux"};
	file *f = pick_file(w);
	uint8_t sel = fz_u8(&w->in);
	char name[300];
	size_t n;
	const uint8_t *v;

	if (sel % 8 == 3) {
		/* a header: bits 5-6 its name, 3-4 the flags, 7 a removal */
		static const size_t nlens[] = {1, 12, 255, 256};
		size_t nl = nlens[(sel >> 5) & 3], pl = strlen(SBFS_XA_HEADER);
		memcpy(name, SBFS_XA_HEADER, pl);
		for (size_t k = 0; k < nl; k++)
			name[pl + k] = nl == 12 ? "Content-Type"[k] : (char)('a' + k % 26);
		name[pl + nl] = '\0';
	} else if (sel % 8 < 7) {
		snprintf(name, sizeof name, "%s", names[sel % 8]);
	} else {
		gen_name(w, 0, name, sizeof name);
	}
	char num[32];
	if ((sel >> 3) % 4 == 0 && sel % 8 <= 2) {
		/* a well-formed number (a key too: the model must see it) */
		snprintf(num, sizeof num, "%llu", (unsigned long long)(f ? next_of(w, f->t) : fz_u64(&w->in)));
		v = (const uint8_t *)num;
		n = strlen(num);
	} else {
		v = fz_bytes(&w->in, fz_u8(&w->in), &n);
	}
	if (!f)
		return;
	if (!strncmp(name, SBFS_XA_HEADER, strlen(SBFS_XA_HEADER))) {
		header_xattr(w, f, name, v, n, sel % 8 == 3 ? (sel >> 3) & 3 : 0, sel % 8 == 3 && (sel & 0x80));
		return;
	}
	int rc = sbfs_pending_setxattr(&w->fs, f->ino, 0, name, (const char *)v, n);
	if (rc == 0 && !strcmp(name, names[0]) && n <= sizeof f->key) {
		memcpy(f->key, v, n);
		f->key_len = n;
		f->key_set = 1;
	} else if (rc == 0 && !strcmp(name, names[0])) {
		f->key_set = 0; /* longer than the model keeps: not checked */
	}
}

/* Name `name` of topic t is gone (unlinked, or replaced by a rename): a
 * file of the model that had it is open but has no name now (a rename of
 * that name is another file's, or none). */
static void name_gone(world *w, int t, const char *name, const file *except)
{
	for (int i = 0; i < NFILE; i++)
		if (w->f[i].p && &w->f[i] != except && w->f[i].t == t && !strcmp(w->f[i].name, name))
			w->f[i].name[0] = '\0';
}

static void file_rename(world *w)
{
	file *f = pick_file(w);
	uint8_t flags = fz_u8(&w->in);
	char name[300];

	if (!f) {
		fz_u8(&w->in);
		return;
	}
	gen_name(w, f->t, name, sizeof name);
	if (!f->name[0])
		return; /* unlinked or replaced: no name to rename */
	uint64_t next0 = next_of(w, f->t);
	int rc = sbfs_pending_rename(&w->fs, w->te[f->t], f->name, name, flags & 1 ? RENAME_NOREPLACE : 0);
	if (rc == 0 && strcmp(f->name, name)) {
		/* a file of the model under that name was replaced: still open,
		 * without a name */
		name_gone(w, f->t, name, f);
		snprintf(f->name, sizeof f->name, "%s", name);
	}
	check_commit(w, f, next0);
}

static void file_flush(world *w, int release)
{
	file *f = pick_file(w);

	if (!f)
		return;
	uint64_t next0 = next_of(w, f->t);
	if (release)
		sbfs_pending_release(&w->fs, f->p);
	else
		(void)sbfs_pending_flush(&w->fs, f->p); /* its outcome: check_commit */
	check_commit(w, f, next0);
	if (release)
		f->p = NULL;
}

static void name_ops(world *w)
{
	int t = pick_topic(w);
	uint8_t what = fz_u8(&w->in);
	char name[300], again[21];
	uint64_t off;
	struct stat st;

	gen_name(w, t < 0 ? 0 : t, name, sizeof name);
	if (sbfs_parse_offset(name, &off) == 0) {
		size_t n = strlen(name);
		FZ_CHECK(n >= 1 && n <= 20 && strspn(name, "0123456789") == n, "%s parsed as an offset", name);
		sbfs_fmt_offset(again, off);
		const char *a = again, *b = name;
		while (*a == '0' && a[1])
			a++;
		while (*b == '0' && b[1])
			b++;
		FZ_CHECK(!strcmp(a, b), "%s parsed as %llu", name, (unsigned long long)off);
	}
	if (t < 0)
		return;
	if (!(what & 1))
		(void)sbfs_pending_lookup(&w->fs, w->te[t], name, &st);
	else if (sbfs_pending_unlink(&w->fs, w->te[t], name) == 0)
		name_gone(w, t, name, NULL);
}

static void attr_ops(world *w)
{
	int t = pick_topic(w);
	uint8_t what = fz_u8(&w->in);
	uint64_t off = fz_u64(&w->in);
	struct stat st;
	double ttl;
	file *f = &w->f[what % NFILE];

	if (t < 0)
		return;
	switch ((what >> 3) % 5) {
	case 0: (void)sbfs_attr_any(&w->fs, sbfs_ino(w->te[t]->id, SBFS_L_DIR), &st, &ttl); break;
	case 1: (void)sbfs_attr_any(&w->fs, sbfs_ino(w->te[t]->id, SBFS_L_LOG), &st, &ttl); break;
	case 2: (void)sbfs_attr_any(&w->fs, sbfs_ino(w->te[t]->id, SBFS_L_REC0 + off % (next_of(w, t) + 2)), &st, &ttl); break;
	case 3: (void)sbfs_attr_any(&w->fs, (fuse_ino_t)off, &st, &ttl); break;
	default:
		if (f->p)
			(void)sbfs_attr_any(&w->fs, f->ino, &st, &ttl);
		break;
	}
}

static void verify_all(const char *store)
{
	DIR *d = opendir(store);
	struct dirent *e;
	char path[PATH_MAX];

	FZ_CHECK(d, "store directory gone");
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		snprintf(path, sizeof path, "%s/%s", store, e->d_name);
		sb_verify_result res;
		FZ_CHECK(sb_verify_topic(path, NULL, NULL, NULL, &res) == 0, "verify %s", path);
		FZ_CHECK(sb_verify_damage(&res) == 0, "topic %s has %llu problems after unmount", e->d_name,
			 (unsigned long long)sb_verify_damage(&res));
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static world w;
	char store[PATH_MAX], mnt[PATH_MAX];
	sbfs_backend *b;

	memset(&w, 0, sizeof w);
	w.in = (fz_in){data, size};
	snprintf(store, sizeof store, "%s/store", fz_scratch());
	snprintf(mnt, sizeof mnt, "%s/mnt", fz_scratch());
	fz_rmtree(store);
	w.cfg.log_dir = store;
	w.cfg.mountpoint = mnt;
	w.cfg.umask = 022;
	w.cfg.create = 1;
	w.cfg.backend = &sbfs_backend_store;
	FZ_CHECK(w.cfg.backend->settings_new(&w.cfg.bsettings) == 0, "settings");
	sb_log_config *lc = sbfs_store_log_config(w.cfg.bsettings);
	lc->sync = SB_SYNC_NEVER;
	lc->segment_bytes = 8192;
	lc->index_interval_bytes = 256;
	lc->max_record_bytes = MAX_REC;
	FZ_CHECK(w.cfg.backend->open(&w.cfg, &b) == 0, "store open");
	FZ_CHECK(sbfs_init(&w.fs, &w.cfg, b) == 0, "sbfs_init");
	for (int t = 0; t < NTOPIC; t++)
		if (fz_u8(&w.in) & 1)
			FZ_CHECK(sbfs_topic_create(&w.fs, tnames[t], &w.te[t]) == 0, "mkdir %s", tnames[t]);
	for (int i = 0; i < MAX_OPS && w.in.n; i++) {
		switch (fz_u8(&w.in) % 12) {
		case 0: op_mkdir(&w); break;
		case 1: log_open(&w); break;
		case 2: log_write(&w); break;
		case 3: log_close(&w); break;
		case 4: file_create(&w); break;
		case 5: file_write(&w); break;
		case 6: file_read(&w); break;
		case 7: file_setxattr(&w); break;
		case 8: file_rename(&w); break;
		case 9: file_flush(&w, fz_u8(&w.in) & 1); break;
		case 10: name_ops(&w); break;
		default: attr_ops(&w); break;
		}
	}
	/* close what is open, as the kernel's releases would, then unmount */
	for (int i = 0; i < NLOG; i++) {
		if (w.lh[i].h) {
			(void)sbfs_log_flush_partial(&w.fs, w.lh[i].h);
			sbfs_fh_free(&w.fs, w.lh[i].h);
		}
		free(w.lh[i].part);
	}
	for (int i = 0; i < NFILE; i++) {
		if (w.f[i].p)
			sbfs_pending_release(&w.fs, w.f[i].p);
		free(w.f[i].buf);
	}
	sbfs_shutdown(&w.fs);
	sbfs_fini(&w.fs);
	w.cfg.backend->settings_free(w.cfg.bsettings);
	verify_all(store);
	fz_rmtree(store);
	return 0;
}
