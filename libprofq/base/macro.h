/* SPDX-License-Identifier: MIT */
/*
 * Small helpers used everywhere: cleanup attributes, ownership transfer, array sizes.
 * Header only; no state.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _pure_ __attribute__((pure))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL
#define USEC_PER_SEC 1000000ULL

/* Hand a pointer (or fd) over to a new owner and reset the old variable. */
#define TAKE_PTR(p)                  \
	({                           \
		typeof(p) _p_ = (p); \
		(p) = NULL;          \
		_p_;                 \
	})
#define TAKE_FD(fd)              \
	({                       \
		int _fd_ = (fd); \
		(fd) = -1;       \
		_fd_;            \
	})

/* Defines type##p(type **) that calls func(*p) when *p is set, for _cleanup_. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
	static inline void func##p(type *p)     \
	{                                       \
		if (*p)                         \
			func(*p);               \
	}

/* free() that returns NULL, for `p = mfree(p);`. */
static inline void *mfree(void *p)
{
	free(p);
	return NULL;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static inline bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static inline const char *strempty(const char *s)
{
	return s ? s : "";
}

/* errno after a failed libc call, as a negative value that is never 0. */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/*
 * Grow *array (of *allocated elements of size elem) so it holds at least need elements.
 * Returns 0 or -ENOMEM; on failure *array is unchanged.
 */
static inline int greedy_realloc(void **array, size_t *allocated, size_t need, size_t elem)
{
	size_t n;
	void *p;

	if (need <= *allocated)
		return 0;
	n = MAX(need, *allocated * 2);
	n = MAX(n, (size_t)8);
	if (n > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*array, n * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	*allocated = n;
	return 0;
}

#define GREEDY_REALLOC(array, allocated, need) \
	greedy_realloc((void **)&(array), &(allocated), (need), sizeof((array)[0]))
