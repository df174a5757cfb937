/* SPDX-License-Identifier: MIT */
#include <execinfo.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "service/config.h"
#include "service/profqd.h"

#define EXIT_USAGE 2

static void help(void)
{
	printf("Usage: profqd [OPTIONS]\n"
	       "\n"
	       "Always-on, system-wide CPU profiler daemon. Samples the stacks of every CPU with\n"
	       "eBPF, keeps time-windowed profiles, and answers queries from profq(1).\n"
	       "\n"
	       "Options (each also a config file key, without the dashes):\n"
	       "  --config FILE         Config file (default " CONFIG_DEFAULT_PATH ")\n"
	       "  --socket PATH         Query socket (default " CONFIG_DEFAULT_SOCKET ")\n"
	       "  --state-dir DIR       State directory (default " CONFIG_DEFAULT_STATE_DIR ")\n"
	       "  --frequency HZ        Samples per second per CPU, 1..10000 (default 99)\n"
	       "  --window DURATION     Profile window length (default 10s)\n"
	       "  --retention DURATION  How long windows are kept (default 1h)\n"
	       "  --max-memory SIZE     Memory budget (default 64M)\n"
	       "  --max-disk SIZE       Disk budget of the state directory (default 1G)\n"
	       "  --stack-copy SIZE     User stack copied per sample and unwound with the\n"
	       "                        binaries' CFI (default 16K; 0: frame pointers only)\n"
	       "  --python yes|no       Python functions of CPython processes (default yes;\n"
	       "                        needs --stack-copy)\n"
	       "  --memory yes|no       Resident set of every process over time, peaks and\n"
	       "                        OOM kills (default yes)\n"
	       "  --off-cpu yes|no      Record where threads wait off the CPU (default no)\n"
	       "  --faults yes|no       Record the stacks that fault memory in (default yes)\n"
	       "  --debug-dir DIRS      More roots for separate debug files (DIR/.build-id/...),\n"
	       "                        colon-separated, after /usr/lib/debug\n"
	       "  --group NAME          Members may query every process "
	       "(default " CONFIG_DEFAULT_GROUP ",\n"
	       "                        if it exists)\n"
	       "  --log-level LEVEL     err, warning, notice, info or debug (default info)\n"
	       "  --push URL            Send every closed window as pprof to this Pyroscope\n"
	       "                        compatible ingest endpoint (repeatable)\n"
	       "  --push-token-file FILE  Credentials for the push targets: user:password\n"
	       "                        (basic) or a bearer token\n"
	       "  --push-app NAME       Application name of the pushed series (default profq)\n"
	       "  --push-labels LIST    Labels of each pushed profile, among host,comm,pid,\n"
	       "                        unit,container (default all)\n"
	       "  --push-comm GLOB      Push only processes whose command name matches\n"
	       "  --push-unit GLOB      Push only processes of a systemd unit that matches\n"
	       "  --push-max-spool SIZE Uploads kept per target while it is unreachable\n"
	       "                        (default 64M)\n"
	       "  --push-timeout DURATION  Longest upload (default 10s)\n"
	       "  --push-retry-max DURATION  Longest wait between retries (default 60s)\n"
	       "  -h --help             Show this help\n"
	       "     --version          Show the version\n");
}

typedef struct Setting {
	const char *key;
	const char *value;
} Setting;

/*
 * Each binary the symbolizer holds keeps a descriptor or two (its names and DWARF are read on
 * demand): a soft limit of 1024 is too few on a busy host. The unit sets its own limit.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= 65536 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)65536);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug_errno(negative_errno(), "Failed to raise the descriptor limit: %m");
}

/*
 * A fatal signal in profqd (or one of its worker processes, which inherit this): the signal,
 * the faulting address and the stack go to the log before the default action (a core dump
 * where allowed), so that a crash never goes without a word. Frames are printed as
 * binary(+offset), for addr2line. backtrace() is called once at start: its first call loads
 * libgcc_s, which a signal handler must not.
 */
static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	void *frames[64];
	char buf[160];
	int n, len;

	(void)uc;
	len = snprintf(buf, sizeof(buf), "profqd[%d]: fatal signal %d (%s) at address %p\n",
		       (int)getpid(), sig, sigdescr_np(sig) ?: "?", si->si_addr);
	if (len > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)MIN(len, (int)sizeof(buf) - 1));
	n = backtrace(frames, (int)ARRAY_SIZE(frames));
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	/* SA_RESETHAND: the instruction faults again, or the signal is raised again, now with
	 * the default action. */
	if (si->si_code <= 0)
		raise(sig);
}

static void fatal_handler_install(void)
{
	static char altstack[64 * 1024];
	const stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	struct sigaction sa = { .sa_sigaction = on_fatal,
				.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK };
	void *prime[1];
	const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };

	(void)backtrace(prime, 1);
	(void)sigaltstack(&ss, NULL);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		(void)sigaction(sigs[i], &sa, NULL);
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 0 },
		{ "state-dir", required_argument, NULL, 0 },
		{ "frequency", required_argument, NULL, 0 },
		{ "window", required_argument, NULL, 0 },
		{ "retention", required_argument, NULL, 0 },
		{ "max-memory", required_argument, NULL, 0 },
		{ "max-disk", required_argument, NULL, 0 },
		{ "stack-copy", required_argument, NULL, 0 },
		{ "python", required_argument, NULL, 0 },
		{ "memory", required_argument, NULL, 0 },
		{ "off-cpu", required_argument, NULL, 0 },
		{ "faults", required_argument, NULL, 0 },
		{ "debug-dir", required_argument, NULL, 0 },
		{ "group", required_argument, NULL, 0 },
		{ "log-level", required_argument, NULL, 0 },
		{ "push", required_argument, NULL, 0 },
		{ "push-token-file", required_argument, NULL, 0 },
		{ "push-app", required_argument, NULL, 0 },
		{ "push-labels", required_argument, NULL, 0 },
		{ "push-comm", required_argument, NULL, 0 },
		{ "push-unit", required_argument, NULL, 0 },
		{ "push-max-spool", required_argument, NULL, 0 },
		{ "push-timeout", required_argument, NULL, 0 },
		{ "push-retry-max", required_argument, NULL, 0 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	_cleanup_(profqd_freep) Profqd *m = NULL;
	_cleanup_free_ Setting *settings = NULL;
	_cleanup_free_ const char **keys = NULL;
	_cleanup_free_ char *error = NULL;
	const char *config_path = NULL;
	size_t n = 0;
	Config config;
	int c, idx, r;

	log_open();
	fatal_handler_install();
	settings = calloc((size_t)argc, sizeof(Setting));
	keys = calloc((size_t)argc + 1, sizeof(char *));
	if (!settings || !keys)
		return EXIT_FAILURE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", options, &idx)) >= 0) {
		switch (c) {
		case 0:
			settings[n++] = (Setting){ options[idx].name, optarg };
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			help();
			return EXIT_SUCCESS;
		case 'V':
			printf("profqd " PROFQ_VERSION "\n");
			return EXIT_SUCCESS;
		case '?':
			if (optopt)
				log_error("profqd: option '-%c' is unknown or misses its value",
					  optopt);
			else
				log_error("profqd: option '%s' is unknown or misses its value",
					  argv[optind - 1]);
			log_error("Try 'profqd --help'.");
			return EXIT_USAGE;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		log_error("profqd: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}

	r = config_init(&config);
	if (r < 0)
		return EXIT_FAILURE;
	/* Options first, to report their errors as options; they win over the file. */
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *err = NULL;

		r = config_set(&config, settings[i].key, settings[i].value, &err);
		if (r < 0) {
			log_error("profqd: --%s: %s", settings[i].key, err ? err : strerror(-r));
			config_done(&config);
			return EXIT_USAGE;
		}
		keys[i] = settings[i].key;
	}
	/* -ENOENT only when the file is missing: fine for the default file, not a named one. */
	r = config_parse_file(&config, config_path ?: CONFIG_DEFAULT_PATH, keys, &error);
	if (r == -ENOENT && !config_path)
		r = 0;
	else if (r == -ENOENT)
		log_error("profqd: config file '%s' does not exist", config_path);
	if (r < 0) {
		if (error)
			log_error("profqd: %s", error);
		config_done(&config);
		return EXIT_USAGE;
	}
	r = config_validate(&config, &error);
	if (r < 0) {
		log_error("profqd: %s", error ? error : "invalid settings");
		config_done(&config);
		return EXIT_USAGE;
	}
	log_set_max_level(config.log_level);

	/* libdwfl fetches debug info over the network by itself when this is set. */
	unsetenv("DEBUGINFOD_URLS");
	/*
	 * Large buffers (symbol and string tables, section data) live briefly while a binary is
	 * read. A fixed threshold puts them in mappings of their own, given back on free; glibc's
	 * sliding one would move them into the heap after the first free, where they leave holes
	 * that keep the daemon's RSS at its peak for good.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 512 * 1024);
	raise_fd_limit();

	r = profqd_new(&config, &m);
	if (r >= 0)
		r = profqd_run(m);
	m = profqd_free(m);
	config_done(&config);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
