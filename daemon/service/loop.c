/* SPDX-License-Identifier: MIT */
#include "base/macro.h"
#include "service/loop.h"

struct LoopSource {
	int fd;
	loop_callback_t cb;
	void *userdata;
	bool dead;
	LoopSource *next_dead;
};

struct Loop {
	int epfd;
	bool exit;
	LoopSource *dead; /* removed during dispatch, freed after it */
	unsigned n_sources;
};

int loop_new(Loop **ret)
{
	Loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = negative_errno();
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

static void free_dead(Loop *l)
{
	while (l->dead) {
		LoopSource *s = l->dead;
		l->dead = s->next_dead;
		free(s);
	}
}

Loop *loop_free(Loop *l)
{
	if (!l)
		return NULL;
	free_dead(l);
	close(l->epfd);
	free(l);
	return NULL;
}

int loop_add(Loop *l, int fd, uint32_t events, loop_callback_t cb, void *userdata, LoopSource **ret)
{
	LoopSource *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events };

	if (!s)
		return -ENOMEM;
	*s = (LoopSource){ .fd = fd, .cb = cb, .userdata = userdata };
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = negative_errno();
		free(s);
		return r;
	}
	l->n_sources++;
	if (ret)
		*ret = s;
	return 0;
}

int loop_modify(Loop *l, LoopSource *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		return negative_errno();
	return 0;
}

void loop_remove(Loop *l, LoopSource *s)
{
	if (!s || s->dead)
		return;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->dead = true;
	s->next_dead = l->dead;
	l->dead = s;
	l->n_sources--;
}

int loop_run(Loop *l)
{
	struct epoll_event events[32];

	l->exit = false;
	while (!l->exit) {
		int n = epoll_wait(l->epfd, events, (int)ARRAY_SIZE(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (int i = 0; i < n; i++) {
			LoopSource *s = events[i].data.ptr;
			int r;

			/* Removed by an earlier callback of this round. */
			if (s->dead)
				continue;
			r = s->cb(s, s->fd, events[i].events, s->userdata);
			if (r < 0) {
				free_dead(l);
				return r;
			}
		}
		free_dead(l);
	}
	return 0;
}

void loop_exit(Loop *l)
{
	l->exit = true;
}
