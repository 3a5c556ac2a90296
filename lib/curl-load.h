/* libcurl loaded with dlopen() on first use: the table of the libcurl functions metald calls. */
#ifndef METALD_CURL_LOAD_H
#define METALD_CURL_LOAD_H

#include <curl/curl.h>
#include "err.h"

/* Typed like the real declarations. Call through these, never the names from <curl/curl.h>
 * (the programs do not link libcurl). curl_easy_setopt/getinfo lose curl.h's compile-time type
 * checks this way: pass long for numbers, as libcurl wants. */
struct md_curl_lib {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
};

/* Valid after md_curl_load() returned 0. */
extern struct md_curl_lib md_curl;

/*
 * Load libcurl.so.4 and run curl_global_init once; later calls return 0 at once. The library
 * stays loaded for the life of the process. A missing library or symbol is exit class 5
 * ("libcurl: cannot load libcurl.so.4: ..."). Not thread-safe: the first call must not race
 * another (metald-meter makes it before its shipper thread starts).
 */
int md_curl_load(md_err **err);

#endif
