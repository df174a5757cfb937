/* SPDX-License-Identifier: MIT */
/*
 * cxx: a member function of a C++ class template as the hot function, for demangled names in
 * profq (the readable name as "function", the mangled symbol as "symbol").
 *
 *   cxx [--seconds S]
 *
 * Prints its pid first, then spends S seconds (default 2) in wl::Mixer<unsigned long>::churn.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace wl {

template <typename T> struct Mixer {
	T state;

	__attribute__((noinline)) T churn(T rounds)
	{
		for (T i = 0; i < rounds; i++)
			state = (state ^ (state >> 7)) * 0x9E3779B97F4A7C15ull + i;
		return state;
	}
};

} // namespace wl

static double now()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = 2, end;
	wl::Mixer<unsigned long> m{ 1 };
	unsigned long sink = 0;

	if (argc > 2 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (end = now() + seconds; now() < end;)
		sink ^= m.churn(1000000);
	printf("%lu\n", sink);
	return 0;
}
