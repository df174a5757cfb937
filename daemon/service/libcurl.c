/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/macro.h"
#include "service/libcurl.h"

static LibCurl table;
static bool loaded;
static char load_error[256];

int libcurl_load(const LibCurl **ret, const char **ret_error)
{
	static const char *const sonames[] = { "libcurl.so.4", "libcurl-gnutls.so.4" };
	static const struct {
		const char *name;
		size_t offset;
	} symbols[] = {
#define SYM(field) { "curl_" #field, offsetof(LibCurl, field) }
		SYM(easy_init),	     SYM(easy_setopt),	 SYM(easy_perform),   SYM(easy_getinfo),
		SYM(easy_cleanup),   SYM(easy_strerror), SYM(mime_init),      SYM(mime_addpart),
		SYM(mime_name),	     SYM(mime_filename), SYM(mime_type),      SYM(mime_data),
		SYM(mime_free),	     SYM(slist_append),	 SYM(slist_free_all), SYM(global_init),
		SYM(global_cleanup),
#undef SYM
	};
	/* Every member filled in. */
	_Static_assert(ARRAY_SIZE(symbols) * sizeof(void (*)(void)) == sizeof(LibCurl),
		       "a LibCurl member without its symbol");
	const char *soname = NULL;
	void *handle = NULL;
	LibCurl t;

	if (loaded) {
		*ret = &table;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sonames) && !handle; i++) {
		soname = sonames[i];
		handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	}
	if (!handle) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		*ret_error = load_error;
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < ARRAY_SIZE(symbols); i++) {
		void *f = dlsym(handle, symbols[i].name);

		if (!f) {
			snprintf(load_error, sizeof(load_error), "%s has no %s", soname,
				 symbols[i].name);
			dlclose(handle);
			*ret_error = load_error;
			return -EOPNOTSUPP;
		}
		memcpy((char *)&t + symbols[i].offset, &f, sizeof(f));
	}
	if (t.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(load_error, sizeof(load_error), "curl_global_init() failed");
		dlclose(handle);
		*ret_error = load_error;
		return -EOPNOTSUPP;
	}
	/* Stays loaded: the push threads use it until profqd exits. */
	table = t;
	loaded = true;
	*ret = &table;
	return 0;
}

void libcurl_cleanup(void)
{
	if (loaded)
		table.global_cleanup();
	loaded = false;
}
