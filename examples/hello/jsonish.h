/* Allocation-free JSON helpers for the hello handler: check that bytes are one JSON value, and
 * write bytes as a JSON string. No system calls, no heap: they run on a clone's hot path. */
#ifndef HELLO_JSONISH_H
#define HELLO_JSONISH_H

#include <stddef.h>

/* 1 if buf[0..len) is exactly one JSON value (surrounding whitespace allowed), nesting <= 64. */
int jsonish_valid(const char *buf, size_t len);

/*
 * Write buf[0..len) to out as a quoted JSON string: valid UTF-8 kept, invalid bytes as U+FFFD.
 * Returns the bytes written, or 0 if it does not fit in cap.
 */
size_t jsonish_quote(const char *buf, size_t len, char *out, size_t cap);

#endif
