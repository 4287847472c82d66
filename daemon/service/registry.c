/* The snapshot registry: entries for the snapshot files under the state directory and for prewarms
 * in progress, found by id, reference-counted, and freed by the reaper once nothing uses them. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "sprout/log.h"
#include "sprout/snapshot.h"
#include "sprout/vmstate.h"
#include "service.h"

const char *dsnap_status_name(enum dsnap_status s)
{
        static const char *const names[] = {"queued", "booting", "snapshotting", "ready", "failed"};
        return names[s];
}

struct dsnap *registry_new(const uint8_t uuid[16])
{
        struct dsnap *e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        memcpy(e->uuid, uuid, 16);
        uuid_unparse_lower(uuid, e->id);
        e->refs = 1;
        e->last_used_ns = sprout_mono_ns();
        pthread_mutex_init(&e->load_lock, NULL);
        return e;
}

struct dsnap *registry_get(struct sproutd *d, const char *id)
{
        pthread_mutex_lock(&d->lock);
        struct dsnap *e = d->snaps;
        while (e && strcmp(e->id, id))
                e = e->next;
        if (e)
                e->refs++;
        pthread_mutex_unlock(&d->lock);
        return e;
}

void registry_ref_locked(struct dsnap *e)
{
        e->refs++;
}

void registry_put_locked(struct sproutd *d, struct dsnap *e)
{
        if (--e->refs == 0) {
                e->reaping = true;
                reaper_queue_snap(d, e);
        }
}

void registry_put(struct sproutd *d, struct dsnap *e)
{
        if (!e)
                return;
        pthread_mutex_lock(&d->lock);
        registry_put_locked(d, e);
        pthread_mutex_unlock(&d->lock);
}

int registry_add_locked(struct sproutd *d, struct dsnap *e)
{
        for (struct dsnap *o = d->snaps; o; o = o->next)
                if (!strcmp(o->id, e->id))
                        return -EEXIST;
        e->next = d->snaps;
        d->snaps = e;
        e->listed = true;
        e->refs++;
        return 0;
}

void registry_unlist_locked(struct sproutd *d, struct dsnap *e)
{
        if (!e->listed)
                return;
        for (struct dsnap **p = &d->snaps; *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        break;
                }
        e->listed = false;
        registry_put_locked(d, e);
}

/* The image name the snapshot's manifest section records, if it has one. */
static void read_image_name(struct snap_file *f, char *out, size_t len)
{
        struct snap_section s;
        out[0] = '\0';
        if (snap_section(f, SPROUT_SEC_MANIFEST, 0, &s) < 0)
                return;
        json_t *m = json_loadb(s.data, s.len, 0, NULL);
        const char *name = m ? json_string_value(json_object_get(m, "name")) : NULL;
        if (name)
                snprintf(out, len, "%s", name);
        json_decref(m);
}

int registry_read_meta(struct sproutd *d, struct dsnap *e, struct sprout_err *err)
{
        struct snap_file *f;
        int r = snap_open_keyed(e->path, &d->snap_key, &f, err);
        if (r < 0)
                return r;
        const struct snap_info *si = snap_get_info(f);
        memcpy(e->uuid, si->uuid, 16);
        uuid_unparse_lower(si->uuid, e->id);
        e->ram_size = si->ram_size;
        e->file_size = si->file_size;
        e->nonzero_bytes = si->nonzero_pages * SNAP_PAGE_SIZE;
        e->created_ns = (int64_t)si->created_ns;
        read_image_name(f, e->image_name, sizeof(e->image_name));
        snap_close(f);
        return 0;
}

void registry_free_entry(struct sproutd *d, struct dsnap *e)
{
        if (e->base) {
                dbase_free(e->base);
                pthread_mutex_lock(&d->lock);
                d->bases_loaded--;
                pthread_mutex_unlock(&d->lock);
        }
        sp_debug("snapshot %s: entry freed", e->id);
        free(e->console_tail);
        pthread_mutex_destroy(&e->load_lock);
        free(e);
}
