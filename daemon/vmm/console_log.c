/* A bounded ring of a VM's serial output: a flooding guest costs at most `cap` bytes of host
 * memory, and a quiet one none (the ring is allocated at its first byte: most clones never print
 * after their snapshot, and 64 KiB each was a tenth of an idle clone). Its tail leaves escaped: it
 * goes into logs, terminals and JSON. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sprout/escape.h"
#include "vmm_internal.h"

int console_log_init(struct console_log *log, size_t cap, int echo_fd)
{
        if (!cap)
                return -EINVAL;
        log->buf = NULL;
        log->cap = cap;
        log->len = 0;
        log->head = 0;
        log->total = 0;
        log->echo_fd = echo_fd;
        return 0;
}

void console_log_reset(struct console_log *log, int echo_fd)
{
        free(log->buf);
        log->buf = NULL;
        log->len = 0;
        log->head = 0;
        log->total = 0;
        log->echo_fd = echo_fd;
}

void console_log_put(struct console_log *log, const char *data, size_t len)
{
        if (log->echo_fd >= 0) {
                /* Best effort: a closed terminal must not stop the guest. */
                ssize_t r = write(log->echo_fd, data, len);
                (void)r;
        }
        log->total += len;
        /* Without memory for the ring the bytes are lost, and console_log_read says so. */
        if (!log->buf && !(log->buf = malloc(log->cap)))
                return;
        for (size_t i = 0; i < len; i++) {
                log->buf[log->head] = data[i];
                log->head = (log->head + 1) % log->cap;
                if (log->len < log->cap)
                        log->len++;
        }
}

size_t console_log_read(const struct console_log *log, uint64_t since, unsigned lines, char *out,
                        size_t outlen, bool *lost)
{
        if (lost)
                *lost = false;
        if (outlen == 0)
                return 0;
        size_t start = (log->head + log->cap - log->len) % log->cap;
        size_t n = log->len;
        uint64_t first = log->total - log->len; /* the mark of buf[start] */
        if (since > log->total)
                since = log->total; /* a mark from the future names nothing */
        if (since > first) {
                start = (start + (size_t)(since - first)) % log->cap;
                n -= (size_t)(since - first);
        } else if (lost && since < first && since != 0) {
                *lost = true;
        }
        /* Walk back from the end to find where the last `lines` lines begin; a trailing newline
         * does not count as an empty line. */
        size_t skip_from_end = 0;
        unsigned seen = 0;
        for (size_t i = n; i > 0; i--) {
                char c = log->buf[(start + i - 1) % log->cap];
                if (c == '\n' && i != n) {
                        if (++seen == lines)
                                break;
                }
                skip_from_end++;
        }
        size_t take = skip_from_end;
        if (take > outlen - 1)
                take = outlen - 1;
        if (lost && take < n)
                *lost = true;
        size_t from = n - take;
        char *raw = malloc(take + 1), *esc = malloc(4 * take + 1);
        if (!raw || !esc) {
                free(raw);
                free(esc);
                out[0] = '\0';
                return 0;
        }
        for (size_t i = 0; i < take; i++)
                raw[i] = log->buf[(start + from + i) % log->cap];
        size_t skip = 0;
        if (take < skip_from_end) {
                /* Cut to fit: start on a line, when one begins in what is kept. */
                const char *nl = memchr(raw, '\n', take);
                if (nl && nl + 1 < raw + take)
                        skip = (size_t)(nl + 1 - raw);
        }
        size_t m = sprout_escape(esc, 4 * take + 1, raw + skip, take - skip, SPROUT_ESC_KEEP_LINES);
        /* Escaping grows the text; keep its end (the newest lines), starting on a line. */
        size_t cut = m > outlen - 1 ? m - (outlen - 1) : 0;
        if (cut && lost)
                *lost = true;
        if (cut) {
                const char *nl = memchr(esc + cut, '\n', m - cut);
                if (nl && nl + 1 < esc + m) {
                        cut = (size_t)(nl + 1 - esc);
                } else {
                        /* One line longer than out: start after any escape or UTF-8
                         * character the cut split. */
                        for (size_t q = cut > 3 ? cut - 3 : 0; q < cut; q++)
                                if (esc[q] == '\\' && esc[q + 1] == 'x' && q + 4 > cut)
                                        cut = q + 4;
                        while (cut < m && ((unsigned char)esc[cut] & 0xc0) == 0x80)
                                cut++;
                }
        }
        memcpy(out, esc + cut, m - cut);
        out[m - cut] = '\0';
        free(raw);
        free(esc);
        return m - cut;
}

void console_log_free(struct console_log *log)
{
        free(log->buf);
        log->buf = NULL;
}
