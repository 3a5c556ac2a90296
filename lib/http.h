/* HTTP/1.1 requests over a unix socket (libcurl), for VMM REST APIs: one kept-alive connection, timeouts. */
#ifndef METALD_HTTP_H
#define METALD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "err.h"

struct md_http;

/* A client for the API socket at sock_path; every request is bounded by timeout_ns (connect
 * included). The connection is opened lazily and kept alive between requests. */
int md_http_open(struct md_http **out, const char *sock_path, uint64_t timeout_ns, md_err **err);
void md_http_close(struct md_http *h);
void md_http_set_timeout(struct md_http *h, uint64_t timeout_ns);

struct md_http_resp {
	long status;  /* HTTP status */
	char *body;   /* NUL-terminated, possibly empty */
	size_t len;
	uint64_t elapsed_ns;
};
void md_http_resp_free(struct md_http_resp *r);

/*
 * method "GET", "PUT", "PATCH"...; path "/drives/rootfs"; body NULL or JSON text (sent with
 * Content-Type: application/json). Any HTTP status is a success of this call: the caller judges it.
 * Errors: the socket does not exist or refuses → class 3 ("VMM gone"); timeout → 124; other
 * transport errors → 1. Messages start with "METHOD PATH".
 */
int md_http_request(struct md_http *h, const char *method, const char *path, const char *body,
		    struct md_http_resp *resp, md_err **err);

/* The socket of the kept-alive connection (after a request), or -1. */
int md_http_peer_fd(struct md_http *h);

/* Statistics since open: requests made and the total time spent in them. */
void md_http_stats(const struct md_http *h, unsigned *requests, uint64_t *total_ns);

#endif
