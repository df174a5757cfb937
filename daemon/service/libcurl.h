/* SPDX-License-Identifier: MIT */
/*
 * libcurl, loaded (dlopen) by the first push target rather than linked: profqd without --push
 * never maps it. libcurl brings about thirty libraries of its own (TLS, Kerberos, LDAP, SSH,
 * HTTP/2, IDN), some 6 MiB of profqd's resident set and a tenth of its start-up, all for a
 * feature that is off by default. The functions push.c calls, through one table that stays
 * loaded until profqd exits. Thread-safe once loaded (the table is never written again).
 */
#pragma once

#include <curl/curl.h>

typedef struct LibCurl {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *curl);
	const char *(*easy_strerror)(CURLcode code);
	curl_mime *(*mime_init)(CURL *curl);
	curl_mimepart *(*mime_addpart)(curl_mime *mime);
	CURLcode (*mime_name)(curl_mimepart *part, const char *name);
	CURLcode (*mime_filename)(curl_mimepart *part, const char *filename);
	CURLcode (*mime_type)(curl_mimepart *part, const char *mimetype);
	CURLcode (*mime_data)(curl_mimepart *part, const char *data, size_t datasize);
	void (*mime_free)(curl_mime *mime);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *data);
	void (*slist_free_all)(struct curl_slist *list);
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
} LibCurl;

/*
 * Loads libcurl (libcurl.so.4, else the GnuTLS flavour libcurl-gnutls.so.4) and its functions,
 * and initializes it (curl_global_init()), once: 0 and the table, or -EOPNOTSUPP with
 * *ret_error (static) saying what failed. Call it from the main thread before any push thread
 * runs.
 */
int libcurl_load(const LibCurl **ret, const char **ret_error);
/* curl_global_cleanup() if it was loaded, once the push threads are gone (the library stays
 * mapped). */
void libcurl_cleanup(void);
