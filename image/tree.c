/* The initramfs entry table: a hash of canonical guest paths, with the priority rule, symlinked
 * parents followed like the kernel's unpacker would, and parents created on demand. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

#define TREE_MAX_NODES 1000000 /* far above any real initramfs; bounds a hostile rootfs */
#define MAX_LINK_HOPS  32

void tree_init(struct tree *t)
{
        memset(t, 0, sizeof(*t));
}

static void node_free(struct tnode *n)
{
        if (!n)
                return;
        free(n->path);
        free(n->src);
        free(n->data);
        free(n);
}

void tree_free(struct tree *t)
{
        for (size_t i = 0; i < t->n; i++)
                node_free(t->nodes[i]);
        free(t->nodes);
        free(t->slots);
        tree_init(t);
}

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static size_t *slot_for(const struct tree *t, const char *path)
{
        size_t mask = t->nslots - 1;
        for (size_t i = hash_str(path) & mask;; i = (i + 1) & mask) {
                if (t->slots[i] == SIZE_MAX || strcmp(t->nodes[t->slots[i]]->path, path) == 0)
                        return &t->slots[i];
        }
}

struct tnode *tree_get(const struct tree *t, const char *path)
{
        if (t->nslots == 0)
                return NULL;
        size_t *s = slot_for(t, path);
        return *s == SIZE_MAX ? NULL : t->nodes[*s];
}

static int grow(struct tree *t)
{
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 256;
                struct tnode **nodes = realloc(t->nodes, cap * sizeof(*nodes));
                if (!nodes)
                        return -ENOMEM;
                t->nodes = nodes;
                t->cap = cap;
        }
        if ((t->n + 1) * 2 <= t->nslots)
                return 0;
        size_t nslots = t->nslots ? t->nslots * 2 : 512;
        size_t *slots = malloc(nslots * sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        free(t->slots);
        t->slots = slots;
        t->nslots = nslots;
        for (size_t i = 0; i < nslots; i++)
                slots[i] = SIZE_MAX;
        for (size_t i = 0; i < t->n; i++)
                *slot_for(t, t->nodes[i]->path) = i;
        return 0;
}

/* Lexical normalization: no leading '/', no empty or "." parts, ".." pops (not past the root). */
static int normalize(const char *in, char *out, size_t cap)
{
        size_t o = 0;

        for (const char *p = in; *p;) {
                while (*p == '/')
                        p++;
                const char *end = strchrnul(p, '/');
                size_t n = (size_t)(end - p);
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        /* nothing */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else {
                        if (o + (o > 0) + n + 1 > cap)
                                return -ENAMETOOLONG;
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p = end;
        }
        out[o] = '\0';
        return 0;
}

/* Follow symlinked parents through the tree, as unpacking would; out gets the real path. */
static int resolve(const struct tree *t, const char *path, char *out, struct sprout_err *err)
{
        char next[PATH_MAX * 2];
        int hops = 0;

        if (normalize(path, out, PATH_MAX) < 0)
                return sprout_err_set(err, -ENAMETOOLONG, "guest path %.128s: too long", path);
again:
        for (char *slash = strchr(out, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                const struct tnode *n = tree_get(t, out);
                *slash = '/';
                if (!n)
                        break; /* parents are always added first, so nothing deeper exists either */
                if (n->type == TN_DIR)
                        continue;
                if (n->type != TN_SYMLINK)
                        return sprout_err_set(err, -ENOTDIR,
                                              "guest path /%s: /%.*s is not a directory", out,
                                              (int)(slash - out), out);
                if (++hops > MAX_LINK_HOPS)
                        return sprout_err_set(err, -ELOOP, "guest path /%s: too many symlinks",
                                              path);
                /* A relative target is relative to the directory holding the link. */
                const char *link_dir_end = memrchr(out, '/', (size_t)(slash - out));
                int dir_len = link_dir_end ? (int)(link_dir_end - out) : 0;
                int len = n->data[0] == '/'
                              ? snprintf(next, sizeof(next), "%s/%s", n->data, slash + 1)
                              : snprintf(next, sizeof(next), "%.*s/%s/%s", dir_len, out, n->data,
                                         slash + 1);
                if (len < 0 || (size_t)len >= sizeof(next) || normalize(next, out, PATH_MAX) < 0)
                        return sprout_err_set(err, -ENAMETOOLONG, "guest path /%.128s: too long",
                                              path);
                goto again;
        }
        if (!out[0])
                return sprout_err_set(err, -EINVAL, "guest path %.128s: resolves to the root",
                                      path);
        return 0;
}

const struct tnode *tree_find(const struct tree *t, const char *path)
{
        char cur[PATH_MAX], next[PATH_MAX];

        for (int hops = 0; hops <= MAX_LINK_HOPS; hops++) {
                if (resolve(t, path, cur, NULL) < 0)
                        return NULL;
                const struct tnode *n = tree_get(t, cur);
                if (!n || n->type != TN_SYMLINK)
                        return n;
                const char *slash = strrchr(cur, '/');
                int dir_len = slash ? (int)(slash - cur) : 0;
                int len = n->data[0] == '/'
                              ? snprintf(next, sizeof(next), "%s", n->data)
                              : snprintf(next, sizeof(next), "%.*s/%s", dir_len, cur, n->data);
                if (len < 0 || (size_t)len >= sizeof(next))
                        return NULL;
                path = next; /* resolve() reads it into cur before next is written again */
        }
        return NULL;
}

static int fill(struct tnode *n, const struct tnode_spec *s)
{
        n->type = s->type;
        n->prio = s->prio;
        n->mode = s->mode & 07777;
        n->mtime = s->mtime;
        n->size = s->type == TN_FILE || s->type == TN_DATA ? s->size : 0;
        n->rmajor = s->rmajor;
        n->rminor = s->rminor;
        n->src = NULL;
        n->data = NULL;
        if (s->type == TN_FILE && !(n->src = strdup(s->src)))
                return -ENOMEM;
        if (s->type == TN_SYMLINK && !(n->data = strdup(s->data)))
                return -ENOMEM;
        if (s->type == TN_DATA) {
                n->data = malloc(s->size ? s->size : 1);
                if (!n->data)
                        return -ENOMEM;
                memcpy(n->data, s->data, s->size);
        }
        return 0;
}

static int insert_new(struct tree *t, const char *path, const struct tnode_spec *s,
                      struct sprout_err *err)
{
        if (t->n >= TREE_MAX_NODES)
                return sprout_err_set(err, -E2BIG, "initramfs: more than %d entries",
                                      TREE_MAX_NODES);
        struct tnode *n = calloc(1, sizeof(*n));
        if (!n || grow(t) < 0 || !(n->path = strdup(path)) || fill(n, s) < 0) {
                node_free(n);
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        *slot_for(t, path) = t->n;
        t->nodes[t->n++] = n;
        t->file_bytes += n->size;
        const char *slash = strrchr(path, '/');
        if (slash) {
                char parent[PATH_MAX];
                memcpy(parent, path, (size_t)(slash - path));
                parent[slash - path] = '\0';
                tree_get(t, parent)->children++; /* exists: parents are made first */
        }
        return 0;
}

static int ensure_parents(struct tree *t, char *path, struct sprout_err *err)
{
        for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                int rc = 0;
                if (!tree_get(t, path)) {
                        struct tnode_spec d = {.type = TN_DIR, .prio = PRIO_PARENT, .mode = 0755};
                        rc = insert_new(t, path, &d, err);
                }
                *slash = '/';
                if (rc < 0)
                        return rc;
        }
        return 0;
}

static int replace(struct tree *t, struct tnode *old, const struct tnode_spec *s,
                   struct sprout_err *err)
{
        if (s->prio < old->prio)
                return 0; /* the existing, stronger entry stays */
        if (old->type == TN_DIR && s->type == TN_DIR) {
                old->mode = s->mode & 07777;
                old->mtime = s->mtime;
                old->prio = s->prio;
                return 0;
        }
        if (old->type == TN_DIR && old->children > 0)
                return sprout_err_set(
                    err, -EISDIR,
                    "guest path /%s: a non-directory would replace a directory that "
                    "has entries",
                    old->path);
        struct tnode tmp = *old;
        t->file_bytes -= old->size;
        if (fill(old, s) < 0) {
                free(old->src);
                free(old->data);
                *old = tmp;
                t->file_bytes += old->size;
                return sprout_err_set(err, -ENOMEM, "out of memory");
        }
        free(tmp.src);
        free(tmp.data);
        old->children = 0;
        t->file_bytes += old->size;
        return 0;
}

int tree_add(struct tree *t, const struct tnode_spec *s, struct sprout_err *err)
{
        char path[PATH_MAX];
        int rc = resolve(t, s->path, path, err);

        if (rc < 0)
                return rc;
        struct tnode *old = tree_get(t, path);
        if (old)
                return replace(t, old, s, err);
        rc = ensure_parents(t, path, err);
        if (rc < 0)
                return rc;
        return insert_new(t, path, s, err);
}

static int by_path(const void *a, const void *b)
{
        return strcmp((*(struct tnode *const *)a)->path, (*(struct tnode *const *)b)->path);
}

void tree_sort(struct tree *t)
{
        if (t->n > 1)
                qsort(t->nodes, t->n, sizeof(*t->nodes), by_path);
        free(t->slots);
        t->slots = NULL;
        t->nslots = 0;
}
