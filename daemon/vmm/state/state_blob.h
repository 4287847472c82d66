/* A growable buffer of typed records (u32 type, u32 length, data padded to 8 bytes): how each piece
 * of saved VM state is laid out inside a snapshot section. Reading checks every length. */
#ifndef SPROUT_STATE_BLOB_H
#define SPROUT_STATE_BLOB_H

#include <stddef.h>
#include <stdint.h>

struct blob {
        uint8_t *data;
        size_t len;
        size_t cap;
        int error; /* sticky: the first allocation failure, so callers check once at the end */
};

void blob_put(struct blob *b, uint32_t type, const void *data, size_t len);
/* Reserves a record of len bytes and returns where to fill it (NULL after an allocation failure).
 */
void *blob_reserve(struct blob *b, uint32_t type, size_t len);
void blob_free(struct blob *b);

struct blob_reader {
        const uint8_t *data;
        size_t len;
        size_t pos;
};

/* Next record: 1 and its type/data/len, 0 at the end, -EINVAL if a length runs past the section. */
int blob_next(struct blob_reader *r, uint32_t *type, const void **data, size_t *len);

#endif
