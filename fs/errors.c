/*
 * errors.c - the one place that turns backend codes into errnos and FUSE
 * error replies, and the daemon's messages (stderr, or syslog once detached).
 */
#include "fs.h"
#include "sb_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
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
	if (rc >= 0)
		return 0;
	switch (rc) {
	case SB_ECORRUPT:
	case SB_EVERSION:
		return EIO;
	case SB_ELOCKED:
		return EBUSY;
	}
	if (rc <= -4000)
		return EIO;
	return -rc;
}

void sbfs_reply_err(fuse_req_t req, int rc)
{
	int e = sbfs_errno(rc);
	if (rc == SB_ECORRUPT || rc == SB_EVERSION || (rc < -4000 && e == EIO))
		sbfs_log("store error: %s", sb_strerror(rc));
	else if (e == EIO)
		sbfs_log("I/O error: %s", sb_strerror(rc));
	fuse_reply_err(req, e ? e : EIO);
}

const char *sbfs_strerror(int rc)
{
	return sb_strerror(rc);
}

int sbfs_err_is_locked(int rc)
{
	return rc == SB_ELOCKED;
}
