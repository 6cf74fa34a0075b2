/*
 * errors.c - FUSE error replies, and the daemon's messages (stderr, or
 * syslog once detached). Backends return negative errnos only (each maps
 * and logs its own codes: backend.h), so a reply is the errno itself.
 */
#include "fs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static atomic_int use_syslog; /* set once, when the daemon detaches */

void sbfs_log_to_syslog(int on)
{
	if (on)
		openlog("streambusfs", LOG_PID, LOG_DAEMON);
	atomic_store(&use_syslog, on);
}

void sbfs_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (atomic_load(&use_syslog))
		syslog(LOG_ERR, "%s", msg);
	else
		fprintf(stderr, "streambusfs: %s\n", msg);
}

int sbfs_errno(int rc)
{
	return rc < 0 ? -rc : 0;
}

void sbfs_reply_err(fuse_req_t req, int rc)
{
	int e = sbfs_errno(rc);
	fuse_reply_err(req, e ? e : EIO);
}

const char *sbfs_strerror(int rc)
{
	return strerror(rc < 0 ? -rc : rc);
}
