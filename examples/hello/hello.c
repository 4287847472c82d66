/* hello: the example handler. Answers each request with {"hello":"world","echo":...,"seq":N}, where
 * echo is the request itself if it is JSON (else the request as a JSON string) and N counts requests
 * this process has served. Everything it touches on the request path is touched before READY. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sprout/guest.h"
#include "jsonish.h"

struct hello {
	struct sprout_guest g;
	char *out; /* the mailbox response area: responses are built in place, no copy */
	uint32_t cap;
	uint64_t seq;
};

static size_t append(char *out, size_t o, size_t cap, const char *s, size_t n)
{
	if (o == SIZE_MAX || n > cap - o)
		return SIZE_MAX;
	memcpy(out + o, s, n);
	return o + n;
}

/* The closing `,"seq":N}` without snprintf: a decimal loop touches no libc state. */
static size_t append_seq(char *out, size_t o, size_t cap, uint64_t seq)
{
	char tail[40] = ",\"seq\":";
	char digits[21];
	size_t nd = 0, t = 7;

	do {
		digits[nd++] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq);
	while (nd)
		tail[t++] = digits[--nd];
	tail[t++] = '}';
	return append(out, o, cap, tail, t);
}

static uint32_t respond_to(struct hello *h, const char *req, uint32_t len)
{
	static const char head[] = "{\"hello\":\"world\",\"echo\":";
	static const char too_big[] = "{\"hello\":\"world\",\"error\":\"request too large to echo\"";
	size_t o = append(h->out, 0, h->cap, head, sizeof(head) - 1);

	h->seq++;
	if (jsonish_valid(req, len)) {
		o = append(h->out, o, h->cap, req, len);
	} else if (o != SIZE_MAX) {
		size_t q = jsonish_quote(req, len, h->out + o, h->cap - o);
		o = q ? o + q : SIZE_MAX;
	}
	o = append_seq(h->out, o, h->cap, h->seq);
	if (o == SIZE_MAX) {
		o = append(h->out, 0, h->cap, too_big, sizeof(too_big) - 1);
		o = append_seq(h->out, o, h->cap, h->seq);
	}
	return (uint32_t)o;
}

/* Run every path of respond_to once and touch the response area and some stack, so that serving a
 * request after a snapshot restore takes no page fault. */
static void prime(struct hello *h)
{
	static const char samples[][24] = {"{\"a\":[1,2.5e3,null]}", "plain \"text\"\n\xff"};

	for (uint32_t off = 0; off < h->cap; off += 4096)
		h->out[off] = 0;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		respond_to(h, samples[i], (uint32_t)strlen(samples[i]));
	sprout_guest_touch_stack(64 * 1024);
	h->seq = 0;
}

int main(void)
{
	static struct hello h;

	if (sprout_guest_open(&h.g) < 0) {
		fprintf(stderr, "hello: %s\n", h.g.err.msg);
		return 1;
	}
	h.out = sprout_guest_response_buf(&h.g, &h.cap);
	prime(&h);
	/* From here on: no system calls. READY returns with the first request in place. */
	sprout_guest_ready(&h.g);
	for (;;) {
		const void *req;
		uint32_t len;
		sprout_guest_request(&h.g, &req, &len);
		sprout_guest_done(&h.g, respond_to(&h, req, len));
	}
}
