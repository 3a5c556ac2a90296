/* nftables through libnftables: run a batch of commands as one transaction, list JSON. */
#ifndef METALD_NFT_H
#define METALD_NFT_H

#include <stdbool.h>
#include <jansson.h>
#include "err.h"

struct md_nft;

/* A libnftables context for the current network namespace. */
int md_nft_open(struct md_nft **out, md_err **err);
void md_nft_close(struct md_nft *n);

/* Run one buffer of nft commands (newline-separated) as one transaction. On failure the error
 * carries nft's own message and status ENOENT/EEXIST when nft reported them. */
int md_nft_run(struct md_nft *n, const char *cmds, md_err **err);

/* Run a list command with JSON output and parse it; the result is nft's "nftables" array.
 * A missing object gives exit class 3. */
int md_nft_list_json(struct md_nft *n, const char *cmd, json_t **out, md_err **err);

#endif
