/* libnftables wrapper: our rules go in as whole transactions, errors carry nft's own words. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nftables/libnftables.h>

#include "cleanup.h"
#include "nft.h"

struct md_nft {
	struct nft_ctx *ctx;
};

int md_nft_open(struct md_nft **out, md_err **err)
{
	struct md_nft *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return md_fail(err, ENOMEM, "nftables");
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (n->ctx == NULL) {
		free(n);
		return md_fail(err, 0, "nftables: cannot make a libnftables context");
	}
	if (nft_ctx_buffer_output(n->ctx) < 0 || nft_ctx_buffer_error(n->ctx) < 0) {
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
	nft_ctx_free(n->ctx);
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

	nft_ctx_output_set_flags(n->ctx, 0);
	rc = nft_run_cmd_from_buffer(n->ctx, cmds);
	(void)nft_ctx_get_output_buffer(n->ctx);
	if (rc != 0) {
		_cleanup_free_ char *msg = first_error_line(nft_ctx_get_error_buffer(n->ctx));
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
	(void)nft_ctx_get_error_buffer(n->ctx);
	return 0;
}

int md_nft_list_json(struct md_nft *n, const char *cmd, json_t **out, md_err **err)
{
	const char *buf;
	json_t *root, *arr;
	json_error_t jerr;
	int rc;

	nft_ctx_output_set_flags(n->ctx, NFT_CTX_OUTPUT_JSON);
	rc = nft_run_cmd_from_buffer(n->ctx, cmd);
	buf = nft_ctx_get_output_buffer(n->ctx);
	nft_ctx_output_set_flags(n->ctx, 0);
	if (rc != 0) {
		_cleanup_free_ char *msg = first_error_line(nft_ctx_get_error_buffer(n->ctx));

		if (strstr(msg, "No such file or directory"))
			return md_notfound(err, "nftables: %s", msg);
		return md_fail(err, 0, "nftables: %s", msg);
	}
	(void)nft_ctx_get_error_buffer(n->ctx);
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
