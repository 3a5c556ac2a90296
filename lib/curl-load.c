/* libcurl loaded with dlopen() on first use (the Firecracker driver, billing delivery).
 *
 * Linked, libcurl and the ~30 libraries Debian's build pulls in (GnuTLS, Kerberos, LDAP, libssh2,
 * ...) cost ~4 ms of dynamic linking at every start of metald-boot and metald-meter, while most
 * of their commands never make an HTTP request (every QEMU operation, --version, argv, report).
 * Only the declarations are used from the header. */
#include <dlfcn.h>
#include <stdbool.h>

#include "curl-load.h"

#define LIBCURL "libcurl.so.4"

struct md_curl_lib md_curl;
static bool loaded;

int md_curl_load(md_err **err)
{
	void *h;
	CURLcode rc;

	if (loaded)
		return 0;
	/* lazy: the symbols we call are looked up below, at once; the rest of libcurl's and its ~30
	 * libraries' functions are bound when first called (~0.4 ms less than RTLD_NOW) */
	h = dlopen(LIBCURL, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL)
		return md_missing(err, "libcurl: cannot load %s: %s (install libcurl4)", LIBCURL, dlerror());
#define SYM(field, name)                                                                                 \
	if ((*(void **)&md_curl.field = dlsym(h, #name)) == NULL)                                        \
		return md_missing(err, "libcurl: %s lacks %s", LIBCURL, #name);
	SYM(global_init, curl_global_init)
	SYM(easy_init, curl_easy_init)
	SYM(easy_setopt, curl_easy_setopt)
	SYM(easy_getinfo, curl_easy_getinfo)
	SYM(easy_perform, curl_easy_perform)
	SYM(easy_reset, curl_easy_reset)
	SYM(easy_cleanup, curl_easy_cleanup)
	SYM(easy_strerror, curl_easy_strerror)
	SYM(slist_append, curl_slist_append)
	SYM(slist_free_all, curl_slist_free_all)
#undef SYM
	/* once, before any other call; DEFAULT for billing's https (SSL is set up lazily anyway) */
	rc = md_curl.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		return md_fail(err, 0, "libcurl: global init failed: %s", md_curl.easy_strerror(rc));
	loaded = true; /* the handle stays open for the life of the process */
	return 0;
}
