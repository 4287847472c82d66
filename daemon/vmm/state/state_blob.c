/* Typed-record buffers for saved VM state; see state_blob.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state_blob.h"

struct rec_hdr {
        uint32_t type;
        uint32_t len;
};

static size_t pad8(size_t n)
{
        return (n + 7) & ~(size_t)7;
}

void *blob_reserve(struct blob *b, uint32_t type, size_t len)
{
        if (b->error)
                return NULL;
        if (len > UINT32_MAX) {
                b->error = -E2BIG;
                return NULL;
        }
        size_t need = b->len + sizeof(struct rec_hdr) + pad8(len);
        if (need > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < need)
                        cap *= 2;
                uint8_t *p = realloc(b->data, cap);
                if (!p) {
                        b->error = -ENOMEM;
                        return NULL;
                }
                b->data = p;
                b->cap = cap;
        }
        struct rec_hdr h = {.type = type, .len = (uint32_t)len};
        memcpy(b->data + b->len, &h, sizeof(h));
        uint8_t *out = b->data + b->len + sizeof(h);
        memset(out, 0, pad8(len));
        b->len = need;
        return out;
}

void blob_put(struct blob *b, uint32_t type, const void *data, size_t len)
{
        void *p = blob_reserve(b, type, len);
        if (p)
                memcpy(p, data, len);
}

void blob_free(struct blob *b)
{
        free(b->data);
        memset(b, 0, sizeof(*b));
}

int blob_next(struct blob_reader *r, uint32_t *type, const void **data, size_t *len)
{
        struct rec_hdr h;
        if (r->pos == r->len)
                return 0;
        if (r->len - r->pos < sizeof(h))
                return -EINVAL;
        memcpy(&h, r->data + r->pos, sizeof(h));
        size_t body = pad8(h.len);
        if (r->len - r->pos - sizeof(h) < body)
                return -EINVAL;
        *type = h.type;
        *data = r->data + r->pos + sizeof(h);
        *len = h.len;
        r->pos += sizeof(h) + body;
        return 1;
}
