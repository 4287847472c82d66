/* Reading the handler's argv and environment lists that the image builder wrote into the initramfs.
 * The files come from the image, so sizes, terminators and entry forms are all checked. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

static int read_capped(const char *path, char *buf, size_t cap, size_t *len, struct sprout_err *err)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return sprout_err_errno(err, -errno, "%s: open", path);
        size_t n = 0;
        int rc = 0;
        /* Read one byte past the cap so an oversized file is caught, not silently cut. */
        while (n <= cap) {
                ssize_t r = read(fd, buf + n, cap + 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        rc = sprout_err_errno(err, -errno, "%s: read", path);
                        break;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        if (rc == 0 && n > cap)
                rc = sprout_err_set(err, -EFBIG, "%s: larger than %zu bytes", path, cap);
        *len = n;
        return rc;
}

static int env_item_ok(const char *s)
{
        const char *eq = strchr(s, '=');
        return eq && eq != s;
}

int agent_list_read(const char *path, struct agent_list *l, int is_env, struct sprout_err *err)
{
        size_t len = 0;
        int rc = read_capped(path, l->buf, SPROUT_LIST_MAX_BYTES, &len, err);
        if (rc < 0)
                return rc;
        l->n = 0;
        l->items[0] = NULL;
        if (len == 0)
                return 0;
        if (l->buf[len - 1] != '\0')
                return sprout_err_set(err, -EINVAL, "%s: last entry is not NUL-terminated", path);
        for (size_t off = 0; off < len;) {
                if (l->n == SPROUT_LIST_MAX_ENTRIES)
                        return sprout_err_set(err, -E2BIG, "%s: more than %d entries", path,
                                              SPROUT_LIST_MAX_ENTRIES);
                char *item = l->buf + off;
                if (is_env && !env_item_ok(item))
                        return sprout_err_set(err, -EINVAL, "%s: entry %zu is not NAME=VALUE", path,
                                              l->n);
                l->items[l->n++] = item;
                off += strlen(item) + 1; /* in bounds: buf[len - 1] is a NUL */
        }
        l->items[l->n] = NULL;
        return 0;
}

static int has_name(char **envp, size_t n, const char *item)
{
        size_t klen = (size_t)(strchr(item, '=') - item) + 1;
        for (size_t i = 0; i < n; i++)
                if (strncmp(envp[i], item, klen) == 0)
                        return 1;
        return 0;
}

void agent_build_env(struct agent *a, char **own_env)
{
        size_t n = 0;
        /* The host picks SPROUT_* settings (e.g. SPROUT_DOORBELL) on the kernel command line, which
         * the kernel hands to init; they win over the image's. */
        for (char **e = own_env; e && *e && n < SPROUT_LIST_MAX_ENTRIES; e++)
                if (strncmp(*e, "SPROUT_", 7) == 0 && env_item_ok(*e))
                        a->envp[n++] = *e;
        size_t own = n;
        for (size_t i = 0; i < a->env_file.n; i++)
                if (!has_name(a->envp, own, a->env_file.items[i]))
                        a->envp[n++] = a->env_file.items[i];
        a->envp[n] = NULL;
}
