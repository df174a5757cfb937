/* SPDX-License-Identifier: MIT */
/*
 * Config: profqd's settings (profqd(8), OPTIONS and CONFIGURATION FILE). One table of keys serves
 * both the command line (--KEY VALUE) and the config file (KEY = VALUE lines, # comments), so both
 * accept the same names and values. Command-line options win over the file. Every failure gives a
 * message that names the file, line and key, or the option. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/profq/profqd.conf"
#define CONFIG_DEFAULT_SOCKET "/run/profq/profq.sock"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/profq"
#define CONFIG_DEFAULT_GROUP "profq"
#define CONFIG_PUSH_MAX 8
#define CONFIG_URL_MAX 2048

typedef struct Config {
	char *socket_path;
	char *state_dir;
	uint32_t frequency;    /* Hz per CPU, 1..10000 */
	uint64_t window_ns;    /* 1 s .. 1 h, whole seconds */
	uint64_t retention_ns; /* >= window, <= 30 days */
	uint64_t max_memory;   /* bytes, >= 8 MiB */
	uint64_t max_disk;     /* bytes of segments in the state dir, >= 16 MiB */
	uint32_t stack_copy;   /* bytes of user stack copied per sample: 0, or 1K..32K */
	bool memory;	       /* resident set over time (rss_stat), OOM kills */
	bool python;	       /* Python frames of CPython processes (needs stack_copy) */
	bool off_cpu;	       /* off-CPU records at context switches */
	bool faults;	       /* page fault samples (bytes faulted in, by stack) */
	char *group;	       /* may query every process */
	char *debug_dirs;      /* extra roots for separate debug files, colon-separated; NULL */
	bool group_explicit;   /* set by the user: must exist */
	int log_level;
	/* Push targets (profqd(8), PUSHING TO A BACKEND). */
	char *push[CONFIG_PUSH_MAX]; /* http:// or https:// URLs */
	size_t n_push;
	char *push_token_file;	 /* basic "user:password" or a bearer token; NULL */
	char *push_app;		 /* the application name of the series */
	unsigned push_labels;	 /* UPLOAD_LABEL_* (service/upload.h) */
	char *push_comm;	 /* only processes whose comm matches this glob; NULL: all */
	char *push_unit;	 /* only processes of a unit that matches this glob; NULL: all */
	uint64_t push_max_spool; /* bytes */
	uint64_t push_timeout_ns;
	uint64_t push_retry_max_ns; /* the longest backoff */
} Config;

int config_init(Config *c);
void config_done(Config *c);

/*
 * Sets key to value. -ENOENT for an unknown key, -EINVAL/-ERANGE for a bad value; *ret_error
 * (caller frees) then explains, without naming where the value came from.
 */
int config_set(Config *c, const char *key, const char *value, char **ret_error);
bool config_key_known(const char *key);

/*
 * Applies a config file's text; name is used in messages ("NAME:LINE: ..."). Unknown keys,
 * bad values, duplicate keys and malformed lines are errors. skip_keys (NULL-terminated, may be
 * NULL) are validated but not applied: the command line sets them.
 */
int config_parse_text(Config *c, const char *name, const char *text, size_t len,
		      const char *const *skip_keys, char **ret_error);
/* Reads and applies a file. -ENOENT only for a missing file (the caller decides if that is
 * fine); any other failure explains itself in *ret_error. */
int config_parse_file(Config *c, const char *path, const char *const *skip_keys, char **ret_error);

/* Checks the settings together (retention >= window). */
int config_validate(const Config *c, char **ret_error);
