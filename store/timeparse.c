/*
 * timeparse.c - the forms of a moment users give (SPEC §2 "Seek by time"):
 * ISO 8601, @EPOCH, or a time relative to now (sb_time_parse, sb_time.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "sb_time.h"

#define NS_PER_S INT64_C(1000000000)

/* n digits at *p (exactly n); -1 if not. */
static int64_t digits(const char **p, int n)
{
	int64_t v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

/* One or more digits (at most 18); -1 if none. */
static int64_t number(const char **p)
{
	int64_t v = 0;
	int n = 0;

	for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (n == 18)
			return -1;
		v = v * 10 + (**p - '0');
	}
	return n ? v : -1;
}

/* ".ddd" (any number of digits, at least one) as nanoseconds; 0 without
 * a dot; -1 on a dot without digits. Digits past the ninth are dropped. */
static int64_t fraction(const char **p)
{
	int64_t v = 0, scale = NS_PER_S;
	int n = 0;

	if (**p != '.' && **p != ',')
		return 0;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (n < 9) {
			scale /= 10;
			v += (**p - '0') * scale;
		}
	}
	return n ? v : -1;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int month_days(int64_t y, int64_t m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[m - 1] + (m == 2 && leap);
}

/* secs * 1e9 + ns - off (seconds), or -ERANGE. */
static int to_ns(int64_t secs, int64_t ns, int64_t off, int64_t *out)
{
	int64_t v;

	if (__builtin_mul_overflow(secs - off, NS_PER_S, &v) || __builtin_add_overflow(v, ns, &v))
		return -ERANGE;
	*out = v;
	return 0;
}

/* A moment past what nanoseconds in an int64 hold (before 1677, after
 * 2262): no record has such a time, so it bounds like the nearest one
 * that can be (a far date is a common "no bound"). */
static int64_t clamp_ns(int64_t secs)
{
	return secs < 0 ? INT64_MIN : INT64_MAX;
}

static int parse_iso(const char *p, int64_t *out)
{
	int64_t y = digits(&p, 4), mo, d, h = 0, mi = 0, s = 0, ns = 0, off = 0;

	if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
	    (d = digits(&p, 2)) < 1 || d > month_days(y, mo))
		return -EINVAL;
	if (*p == 'T' || *p == 't') {
		p++;
		if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59)
			return -EINVAL;
		if (*p == ':') {
			p++;
			if ((s = digits(&p, 2)) < 0 || s > 59 || (ns = fraction(&p)) < 0)
				return -EINVAL;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int neg = *p++ == '-';
			int64_t oh = digits(&p, 2), om = 0;
			if (oh < 0 || oh > 23)
				return -EINVAL;
			if (*p == ':')
				p++;
			if (*p && ((om = digits(&p, 2)) < 0 || om > 59))
				return -EINVAL;
			off = (oh * 3600 + om * 60) * (neg ? -1 : 1);
		} /* no zone: UTC, as a date alone */
	}
	if (*p)
		return -EINVAL;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	if (to_ns(secs, ns, off, out))
		*out = clamp_ns(secs - off);
	return 0;
}

int sb_time_parse(const char *s, int64_t now_ns, int64_t *out)
{
	const char *p = s;
	int64_t v, ns, t;

	if (!s || !*s)
		return -EINVAL;
	if (*p == '@') { /* seconds since the epoch, maybe negative, maybe a fraction */
		int neg = *++p == '-';
		p += neg;
		if ((v = number(&p)) < 0 || (ns = fraction(&p)) < 0 || *p)
			return -EINVAL;
		if (to_ns(v, ns, 0, &t))
			t = INT64_MAX; /* clamped (clamp_ns) */
		*out = neg ? (t == INT64_MAX ? INT64_MIN : -t) : t;
		return 0;
	}
	if (*p == '-' && p[1] >= '0' && p[1] <= '9') { /* -90s, -15m, -2h, -7d, -1.5h */
		static const struct { char c; int64_t s; } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
		p++;
		if ((v = number(&p)) < 0 || (ns = fraction(&p)) < 0)
			return -EINVAL;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			if (p[0] != units[i].c || p[1])
				continue;
			int64_t whole, part;
			if (__builtin_mul_overflow(v, units[i].s, &whole) || to_ns(whole, 0, 0, &t) ||
			    __builtin_mul_overflow(ns, units[i].s, &part) || __builtin_add_overflow(t, part, &t) ||
			    __builtin_sub_overflow(now_ns, t, &t))
				t = INT64_MIN; /* that long ago: clamped (clamp_ns) */
			*out = t;
			return 0;
		}
		return -EINVAL;
	}
	return parse_iso(s, out);
}
