/* HTTP/1.1 over a unix socket with libcurl: the transport of the Firecracker driver. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "curl-load.h"
#include "http.h"
#include "state.h"

struct md_http {
	CURL *curl;
	struct curl_slist *hdrs;
	char *sock;
	uint64_t timeout_ns;
	unsigned requests;
	uint64_t total_ns;
};

int md_http_open(struct md_http **out, const char *sock_path, uint64_t timeout_ns, md_err **err)
{
	struct md_http *h;

	if (md_curl_load(err) < 0)
		return -1;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		abort();
	h->curl = md_curl.easy_init();
	if (h->curl == NULL) {
		free(h);
		return md_fail(err, 0, "libcurl: cannot create a handle");
	}
	h->sock = strdup(sock_path);
	h->timeout_ns = timeout_ns;
	/* "Expect: 100-continue" costs a round trip Firecracker's server never needs */
	h->hdrs = md_curl.slist_append(NULL, "Content-Type: application/json");
	h->hdrs = md_curl.slist_append(h->hdrs, "Accept: application/json");
	h->hdrs = md_curl.slist_append(h->hdrs, "Expect:");
	md_curl.easy_setopt(h->curl, CURLOPT_UNIX_SOCKET_PATH, h->sock);
	md_curl.easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	md_curl.easy_setopt(h->curl, CURLOPT_TCP_NODELAY, 1L);
	md_curl.easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->hdrs);
	*out = h;
	return 0;
}

void md_http_close(struct md_http *h)
{
	if (h == NULL)
		return;
	md_curl.easy_cleanup(h->curl);
	md_curl.slist_free_all(h->hdrs);
	free(h->sock);
	free(h);
}

void md_http_set_timeout(struct md_http *h, uint64_t timeout_ns)
{
	h->timeout_ns = timeout_ns;
}

void md_http_resp_free(struct md_http_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_data(char *data, size_t sz, size_t nm, void *ud)
{
	struct buf *b = ud;
	size_t n = sz * nm;
	char *p = realloc(b->p, b->n + n + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->n, data, n);
	b->n += n;
	p[b->n] = '\0';
	b->p = p;
	return n;
}

int md_http_request(struct md_http *h, const char *method, const char *path, const char *body,
		    struct md_http_resp *resp, md_err **err)
{
	struct buf b = { 0 };
	char url[1024];
	uint64_t t0 = md_now_mono_ns();
	long ms = (long)((h->timeout_ns + 999999) / 1000000);
	CURLcode rc;

	snprintf(url, sizeof(url), "http://localhost%s", path);
	md_curl.easy_setopt(h->curl, CURLOPT_URL, url);
	md_curl.easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
	md_curl.easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 1L);
	md_curl.easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
	md_curl.easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	if (strcmp(method, "GET") == 0) {
		md_curl.easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, NULL);
		md_curl.easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	} else {
		md_curl.easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
		md_curl.easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
		md_curl.easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
	}
	rc = md_curl.easy_perform(h->curl);
	resp->elapsed_ns = md_now_mono_ns() - t0;
	h->requests++;
	h->total_ns += resp->elapsed_ns;
	if (rc != CURLE_OK) {
		free(b.p);
		switch (rc) {
		case CURLE_COULDNT_CONNECT:
			return md_notfound(err, "%s %s: cannot connect to `%s` (is the VMM running?)", method, path, h->sock);
		case CURLE_OPERATION_TIMEDOUT:
			return md_timeout(err, "%s %s: no answer within %.3gs", method, path, (double)h->timeout_ns / 1e9);
		case CURLE_GOT_NOTHING:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
			return md_notfound(err, "%s %s: the VMM closed the connection (%s)", method, path,
					   md_curl.easy_strerror(rc));
		default:
			return md_fail(err, 0, "%s %s: %s", method, path, md_curl.easy_strerror(rc));
		}
	}
	md_curl.easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (b.p == NULL) {
		b.p = calloc(1, 1);
		if (b.p == NULL)
			abort();
	}
	resp->body = b.p;
	resp->len = b.n;
	return 0;
}

int md_http_peer_fd(struct md_http *h)
{
	curl_socket_t fd = CURL_SOCKET_BAD;

	if (md_curl.easy_getinfo(h->curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
		return -1;
	return (int)fd;
}

void md_http_stats(const struct md_http *h, unsigned *requests, uint64_t *total_ns)
{
	*requests = h->requests;
	*total_ns = h->total_ns;
}
