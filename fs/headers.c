/*
 * headers.c - the headers a file being created will give its record: the
 * user.streambus.header.NAME extended attributes set on it before its
 * close (SPEC §2), kept in the order first set, and checked against the
 * limits of backend.h when set, so that the append at the close cannot
 * fail for them and setfattr, cp -a, tar and rsync get a clean error.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

struct sbfs_hdrs {
	sbfs_header *h;       /* n of them; name and value each malloc'ed */
	uint32_t n, cap;
	size_t bytes;         /* the block as a store encodes it (2 + 3 + name + value each) */
	size_t listed;        /* their names as listxattr lists them */
};

/* The header named name (NULL if none). */
static sbfs_header *find(const sbfs_hdrs *hs, const char *name, size_t nlen)
{
	for (uint32_t i = 0; hs && i < hs->n; i++)
		if (hs->h[i].name_len == nlen && !memcmp(hs->h[i].name, name, nlen))
			return &hs->h[i];
	return NULL;
}

/* Bytes a header takes in the block, and in a listxattr reply. */
static size_t block_bytes(size_t nlen, size_t vlen) { return 3 + nlen + vlen; }
static size_t list_bytes(size_t nlen) { return sizeof SBFS_XA_HEADER - 1 + nlen + 1; }

int sbfs_hdrs_set(sbfs_hdrs **hsp, const char *name, const void *value, size_t len, int flags)
{
	sbfs_hdrs *hs = *hsp;
	size_t nlen = strlen(name);
	sbfs_header *old = find(hs, name, nlen);
	size_t bytes = hs ? hs->bytes : 2, listed = hs ? hs->listed : 0;

	if (nlen == 0 || nlen > SBFS_HEADER_NAME_MAX)
		return -EINVAL;
	if ((flags & XATTR_CREATE) && old)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !old)
		return -ENODATA;
	if (len > SBFS_HEADER_VALUE_MAX)
		return -E2BIG;
	if (old)
		bytes -= old->value_len;
	else
		bytes += block_bytes(nlen, 0), listed += list_bytes(nlen);
	if (bytes + len > SBFS_HEADERS_MAX_BYTES || listed > SBFS_HEADERS_LIST_MAX ||
	    (!old && hs && hs->n >= SBFS_HEADERS_MAX_COUNT))
		return -E2BIG;
	void *v = malloc(len ? len : 1);
	if (!v)
		return -ENOMEM;
	memcpy(v, value, len);
	if (old) {
		free((void *)old->value);
		old->value = v;
		old->value_len = (uint32_t)len;
		hs->bytes = bytes + len;
		return 0;
	}
	char *nm = strdup(name);
	if (!hs && !(hs = calloc(1, sizeof *hs)))
		goto out_free;
	if (!nm)
		goto out_free;
	if (hs->n == hs->cap) {
		uint32_t cap = hs->cap ? 2 * hs->cap : 4;
		sbfs_header *nh = realloc(hs->h, cap * sizeof *nh);
		if (!nh)
			goto out_free;
		hs->h = nh;
		hs->cap = cap;
	}
	hs->h[hs->n++] = (sbfs_header){.name = nm, .name_len = (uint32_t)nlen, .value = v,
				       .value_len = (uint32_t)len};
	hs->bytes = bytes + len;
	hs->listed = listed;
	*hsp = hs;
	return 0;
out_free:
	if (hs && !*hsp)
		free(hs);
	free(nm);
	free(v);
	return -ENOMEM;
}

int sbfs_hdrs_remove(sbfs_hdrs *hs, const char *name)
{
	size_t nlen = strlen(name);
	sbfs_header *h = find(hs, name, nlen);

	if (!h)
		return -ENODATA;
	hs->bytes -= block_bytes(nlen, h->value_len);
	hs->listed -= list_bytes(nlen);
	free((void *)h->name);
	free((void *)h->value);
	memmove(h, h + 1, (size_t)(hs->h + hs->n - (h + 1)) * sizeof *h);
	hs->n--;
	return 0;
}

const sbfs_header *sbfs_hdrs_array(const sbfs_hdrs *hs, uint32_t *n)
{
	*n = hs ? hs->n : 0;
	return hs ? hs->h : NULL;
}

void sbfs_hdrs_free(sbfs_hdrs *hs)
{
	if (!hs)
		return;
	for (uint32_t i = 0; i < hs->n; i++) {
		free((void *)hs->h[i].name);
		free((void *)hs->h[i].value);
	}
	free(hs->h);
	free(hs);
}
