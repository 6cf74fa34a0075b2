/* util_tsan.c - lets Criterion start under ThreadSanitizer (build-tsan).
 *
 * Criterion (through BoxFort) puts its "inheritable arena", shared with the
 * forked test processes, at a random 16 MiB-aligned address between
 * 0x200000000000 and 0x600000000000: it probes a place with mincore() (free
 * when that fails with ENOMEM) and maps it MAP_SHARED|MAP_FIXED, giving up
 * after a few tries. Under TSan nearly all of that range is TSan's shadow,
 * meta memory or reserved gaps (mapped PROT_NONE), so Criterion aborts with
 * "Could not initialize inheritable arena" most runs (Snaipe/Criterion#274).
 * The only application range TSan allows there (x86_64 48-bit layout of
 * gcc 12's libtsan) is 0x550000000000 - 0x568000000000. So, in that probe
 * range and outside the application range only: mincore says "free", and a
 * MAP_FIXED|MAP_SHARED mapping asked for there is placed in the application
 * range instead (BoxFort accepts any address inside its range and records
 * where the arena is). Every other call is passed on unchanged. Compiled
 * only with -fsanitize=thread; the code under test calls neither.
 */
#if defined(__SANITIZE_THREAD__)
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROBE_LO 0x200000000000ULL
#define PROBE_HI 0x600000000000ULL
#define TSAN_APP_LO 0x550000000000ULL
#define TSAN_APP_HI 0x568000000000ULL
#define ARENA_PLACE 0x560000000000ULL /* above where PIE binaries go */

static int in_forbidden(uintptr_t a)
{
	return a >= PROBE_LO && a < PROBE_HI && (a < TSAN_APP_LO || a >= TSAN_APP_HI);
}

int mincore(void *addr, size_t len, unsigned char *vec)
{
	if (in_forbidden((uintptr_t)addr)) {
		errno = ENOMEM;
		return -1;
	}
	return (int)syscall(SYS_mincore, addr, len, vec);
}

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

static void *next_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	mmap_fn real = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");

	if (!real) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	return real(addr, len, prot, flags, fd, off);
}

/* Criterion calls mmap64 (glibc calls its own internally, never this). */
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uintptr_t a;
	void *p;

	if (!(flags & MAP_FIXED) || !(flags & MAP_SHARED) || !in_forbidden((uintptr_t)addr))
		return next_mmap(addr, len, prot, flags, fd, off);
	flags = (flags & ~MAP_FIXED) | MAP_FIXED_NOREPLACE;
	for (a = ARENA_PLACE; a + len < TSAN_APP_HI; a += 1ULL << 24) {
		p = next_mmap((void *)a, len, prot, flags, fd, off);
		if (p != MAP_FAILED || errno != EEXIST)
			return p;
	}
	errno = ENOMEM;
	return MAP_FAILED;
}

#else
typedef int sb_util_tsan_unused; /* ISO C: no empty translation unit */
#endif
