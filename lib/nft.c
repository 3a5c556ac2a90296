/* libnftables wrapper: our rules go in as whole transactions, errors carry nft's own words.
 *
 * The library is loaded with dlopen() on first use, not linked: it and what it pulls in
 * (libxtables, libgmp) cost ~0.4 ms of dynamic linking at every start, and the commands that
 * run most often (metald-net create and delete) never need it (their set elements go through
 * libnftnl, nfset.c). Only its declarations are used from the header. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nftables/libnftables.h>

#include "cleanup.h"
#include "nft.h"

#define LIBNFTABLES "libnftables.so.1"

static struct {
	bool loaded;
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_output) *buffer_output;
	__typeof__(nft_ctx_buffer_error) *buffer_error;
	__typeof__(nft_ctx_output_set_flags) *output_set_flags;
	__typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
	__typeof__(nft_ctx_get_output_buffer) *get_output_buffer;
	__typeof__(nft_ctx_get_error_buffer) *get_error_buffer;
} lib;

static int load(md_err **err)
{
	void *h;

	if (lib.loaded)
		return 0;
	h = dlopen(LIBNFTABLES, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL)
		return md_err_set(err, MD_EXIT_MISSING, 0, "nftables: cannot load %s: %s (install libnftables1)", LIBNFTABLES,
				  dlerror());
#define SYM(field, name)                                                                                 \
	if ((*(void **)&lib.field = dlsym(h, #name)) == NULL)                                            \
		return md_err_set(err, MD_EXIT_MISSING, 0, "nftables: %s lacks %s", LIBNFTABLES, #name);
	SYM(ctx_new, nft_ctx_new)
	SYM(ctx_free, nft_ctx_free)
	SYM(buffer_output, nft_ctx_buffer_output)
	SYM(buffer_error, nft_ctx_buffer_error)
	SYM(output_set_flags, nft_ctx_output_set_flags)
	SYM(run_cmd_from_buffer, nft_run_cmd_from_buffer)
	SYM(get_output_buffer, nft_ctx_get_output_buffer)
	SYM(get_error_buffer, nft_ctx_get_error_buffer)
#undef SYM
	lib.loaded = true; /* the handle stays open for the life of the process */
	return 0;
}

struct md_nft {
	struct nft_ctx *ctx;
};

int md_nft_open(struct md_nft **out, md_err **err)
{
	struct md_nft *n;

	if (load(err) < 0)
		return -1;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return md_fail(err, ENOMEM, "nftables");
	n->ctx = lib.ctx_new(NFT_CTX_DEFAULT);
	if (n->ctx == NULL) {
		free(n);
		return md_fail(err, 0, "nftables: cannot make a libnftables context");
	}
	if (lib.buffer_output(n->ctx) < 0 || lib.buffer_error(n->ctx) < 0) {
		md_nft_close(n);
		return md_fail(err, ENOMEM, "nftables: buffers");
	}
	*out = n;
	return 0;
}

void md_nft_close(struct md_nft *n)
{
	if (n == NULL)
		return;
	lib.ctx_free(n->ctx);
	free(n);
}

/* nft's error buffer is several lines (message, the command, a caret line); keep the first
 * "Error: ..." line, which is the kernel's or the parser's own words. */
static char *first_error_line(const char *buf)
{
	const char *p = buf ? strstr(buf, "Error: ") : NULL;
	size_t len;

	if (p == NULL)
		return strdup(buf && *buf ? buf : "unknown error");
	p += strlen("Error: ");
	len = strcspn(p, "\n");
	return strndup(p, len);
}

int md_nft_run(struct md_nft *n, const char *cmds, md_err **err)
{
	int rc;

	lib.output_set_flags(n->ctx, 0);
	rc = lib.run_cmd_from_buffer(n->ctx, cmds);
	(void)lib.get_output_buffer(n->ctx);
	if (rc != 0) {
		_cleanup_free_ char *msg = first_error_line(lib.get_error_buffer(n->ctx));
		int status = 0;

		if (strstr(msg, "No such file or directory"))
			status = ENOENT;
		else if (strstr(msg, "File exists"))
			status = EEXIST;
		md_err_set(err, status == EEXIST ? MD_EXIT_CONFLICT : MD_EXIT_FAIL, 0, "nftables: %s", msg);
		if (err && *err)
			(*err)->status = status;
		return -1;
	}
	(void)lib.get_error_buffer(n->ctx);
	return 0;
}

int md_nft_list_json(struct md_nft *n, const char *cmd, json_t **out, md_err **err)
{
	const char *buf;
	json_t *root, *arr;
	json_error_t jerr;
	int rc;

	lib.output_set_flags(n->ctx, NFT_CTX_OUTPUT_JSON);
	rc = lib.run_cmd_from_buffer(n->ctx, cmd);
	buf = lib.get_output_buffer(n->ctx);
	lib.output_set_flags(n->ctx, 0);
	if (rc != 0) {
		_cleanup_free_ char *msg = first_error_line(lib.get_error_buffer(n->ctx));

		if (strstr(msg, "No such file or directory"))
			return md_notfound(err, "nftables: %s", msg);
		return md_fail(err, 0, "nftables: %s", msg);
	}
	(void)lib.get_error_buffer(n->ctx);
	root = json_loads(buf, 0, &jerr);
	if (root == NULL)
		return md_fail(err, 0, "nftables: unreadable JSON output: %s", jerr.text);
	arr = json_object_get(root, "nftables");
	if (!json_is_array(arr)) {
		json_decref(root);
		return md_fail(err, 0, "nftables: JSON output lacks the `nftables` array");
	}
	*out = json_incref(arr);
	json_decref(root);
	return 0;
}
