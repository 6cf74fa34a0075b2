/*
 * flipshim.c - an LD_PRELOAD library for t_kafka_crc.sh: damage on the
 * wire. After each recv, recvmsg or read of a socket, every occurrence of
 * the bytes of $SB_FLIP_MARKER in what was received has its first byte
 * changed (xor 0x20), as a flipped bit in a broker's disk or on the network
 * would: the record batch holding it no longer matches its CRC.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void flip(void *buf, size_t n)
{
	const char *mk = getenv("SB_FLIP_MARKER");
	size_t ml = mk ? strlen(mk) : 0;
	unsigned char *b = buf;

	if (!ml || n < ml)
		return;
	for (size_t i = 0; i + ml <= n; i++)
		if (b[i] == (unsigned char)mk[0] && !memcmp(b + i, mk, ml))
			b[i] ^= 0x20;
}

static int is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, void *, size_t, int);
	if (!real)
		real = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
	ssize_t r = real(fd, buf, len, flags);
	if (r > 0 && !(flags & MSG_PEEK))
		flip(buf, (size_t)r);
	return r;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, struct msghdr *, int);
	if (!real)
		real = (ssize_t(*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
	ssize_t r = real(fd, msg, flags);
	size_t left = r > 0 ? (size_t)r : 0;
	for (size_t i = 0; left && !(flags & MSG_PEEK) && i < (size_t)msg->msg_iovlen; i++) {
		size_t n = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
		flip(msg->msg_iov[i].iov_base, n);
		left -= n;
	}
	return r;
}

ssize_t read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	ssize_t r = real(fd, buf, len);
	if (r > 0 && is_socket(fd))
		flip(buf, (size_t)r);
	return r;
}
