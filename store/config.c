/*
 * config.c - log configuration defaults and checks, topic names, and the
 * names of errors.
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "sb_store.h"

void sb_log_config_default(sb_log_config *c)
{
	c->segment_bytes = 134217728;
	c->index_interval_bytes = 4096;
	c->max_record_bytes = 1048576;
	c->sync = SB_SYNC_INTERVAL;
	c->sync_interval_ms = 1000;
	c->retention_bytes = -1;
	c->retention_ms = -1;
	c->compression = SB_COMPRESS_NONE;
	c->compression_block_bytes = 65536; /* by measurement: docs/BENCHMARKS.md, docs/FORMAT.md */
	c->key_memtable_bytes = 4u << 20;
	c->cleanup = SB_CLEANUP_DELETE;
	c->delete_retention_ms = 86400000;
}

int sb_cleanup_parse(const char *s, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned v;
	} names[] = {{"delete", SB_CLEANUP_DELETE}, {"compact", SB_CLEANUP_COMPACT},
		     {"compact,delete", SB_CLEANUP_COMPACT | SB_CLEANUP_DELETE},
		     {"delete,compact", SB_CLEANUP_COMPACT | SB_CLEANUP_DELETE},
		     /* the same, where a comma would split an option list */
		     {"compact+delete", SB_CLEANUP_COMPACT | SB_CLEANUP_DELETE},
		     {"delete+compact", SB_CLEANUP_COMPACT | SB_CLEANUP_DELETE}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].v;
			return 0;
		}
	return -EINVAL;
}

const char *sb_cleanup_name(unsigned c)
{
	if (c == SB_CLEANUP_COMPACT)
		return "compact";
	return c == (SB_CLEANUP_COMPACT | SB_CLEANUP_DELETE) ? "compact,delete" : "delete";
}

int sb_log_config_check(const sb_log_config *c, const char **why)
{
	const char *w = NULL;
	uint64_t batch = (uint64_t)c->max_record_bytes + SB_REC_HDR + SB_KEY_MAX + SB_HDRS_MAX;

	if (batch < (4u << 20))
		batch = 4u << 20;
	/* the record limit first: the segment's room depends on it, and a
	 * record limit out of its range must be named, not the segment size */
	if (c->max_record_bytes < 1 || c->max_record_bytes > (512u << 20))
		w = "max_record_bytes must be between 1 and 512 MiB";
	else if (c->segment_bytes < 4096 || c->segment_bytes + batch + SB_SEG_HDR > SB_SEG_MAX_BYTES)
		w = "segment_bytes must be between 4096 and 2 GiB";
	else if (c->index_interval_bytes < 1)
		w = "index_interval_bytes must be at least 1";
	else if (c->sync != SB_SYNC_NEVER && c->sync != SB_SYNC_INTERVAL && c->sync != SB_SYNC_ALWAYS)
		w = "sync must be never, interval or always";
	else if (c->sync == SB_SYNC_INTERVAL && c->sync_interval_ms < 1)
		w = "sync_interval_ms must be at least 1";
	else if (c->retention_bytes < -1)
		w = "retention_bytes must be -1 or a byte count";
	else if (c->retention_ms < -1)
		w = "retention_ms must be -1 or a number of milliseconds";
	else if (c->compression != SB_COMPRESS_NONE && c->compression != SB_COMPRESS_LZ4 &&
		 c->compression != SB_COMPRESS_ZSTD)
		w = "compression must be none, lz4 or zstd";
	else if (c->compression_block_bytes < 1024 || c->compression_block_bytes > (16u << 20))
		w = "compression_block_bytes must be between 1 KiB and 16 MiB";
	else if (c->cleanup & ~(SB_CLEANUP_DELETE | SB_CLEANUP_COMPACT)) /* 0: delete */
		w = "cleanup must be delete, compact or compact,delete";
	else if (c->delete_retention_ms < 0)
		w = "delete_retention_ms must be a number of milliseconds";
	if (w && why)
		*why = w;
	return w ? -EINVAL : 0;
}

int sb_sync_parse(const char *s, enum sb_sync *out)
{
	static const char *const names[] = {"never", "interval", "always"};

	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum sb_sync)i;
			return 0;
		}
	return -EINVAL;
}

int sb_compression_parse(const char *s, enum sb_compression *out)
{
	static const char *const names[] = {"none", "lz4", "zstd"};

	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum sb_compression)i;
			return 0;
		}
	return -EINVAL;
}

const char *sb_compression_name(enum sb_compression c)
{
	return c == SB_COMPRESS_LZ4 ? "lz4" : c == SB_COMPRESS_ZSTD ? "zstd" : "none";
}

const char *sb_sync_name(enum sb_sync s)
{
	return s == SB_SYNC_NEVER ? "never" : s == SB_SYNC_ALWAYS ? "always" : "interval";
}

int sb_topic_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > 249 || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

const char *sb_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case SB_ECORRUPT:
		return "corrupt data (checksum or format mismatch)";
	case SB_EVERSION:
		return "unknown on-disk format version";
	case SB_ELOCKED:
		return "log directory is in use by another process (is it mounted?)";
	default:
		return rc < 0 ? strerror(-rc) : "unknown error";
	}
}
