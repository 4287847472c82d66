/* Per-tenant quotas: what one tenant (a snapshot's owner, docs/api.md "Tenants") may hold of the
 * daemon's shared limits, so that one client cannot take every clone, prewarm slot or snapshot
 * from the others. Counted from the registry when a request asks, under d->lock: snapshots are
 * few, and a count that is never stored cannot drift. Root is not limited. */
#include <errno.h>

#include "service.h"

void quota_use_locked(const struct sproutd *d, uid_t uid, struct tenant_use *u)
{
        *u = (struct tenant_use){0};
        for (const struct dsnap *e = d->snaps; e; e = e->next) {
                if (e->owner != uid)
                        continue;
                u->snapshots++;
                u->clones += e->clones;
                unsigned slots = e->base ? dbase_ready_slots_locked(e->base) : 0;
                u->memory += (uint64_t)(e->clones + slots) * e->ram_size;
                if (e->base)
                        u->memory += e->nonzero_bytes;
                u->disk += e->file_size;
                if (e->status == DSNAP_QUEUED || e->status == DSNAP_BOOTING ||
                    e->status == DSNAP_SNAPSHOTTING)
                        u->prewarms++;
        }
}

static uint64_t mib(int64_t n)
{
        return (uint64_t)n << 20;
}

bool quota_memory_fits_locked(const struct sproutd *d, uid_t uid, uint64_t bytes)
{
        if (uid == 0 || !d->cfg.tenant_max_guest_memory_mib)
                return true;
        struct tenant_use u;
        quota_use_locked(d, uid, &u);
        return u.memory + bytes <= mib(d->cfg.tenant_max_guest_memory_mib);
}

int quota_clones_locked(const struct sproutd *d, const struct dsnap *e, unsigned n,
                        struct sprout_err *err)
{
        uid_t uid = e->owner;
        if (uid == 0)
                return 0;
        struct tenant_use u;
        quota_use_locked(d, uid, &u);
        int64_t max = d->cfg.tenant_max_clones, mem = d->cfg.tenant_max_guest_memory_mib;
        if (max && (int64_t)u.clones + n > max)
                return sprout_err_set(err, -EDQUOT,
                                      "tenant %u has %u live clones and may have %lld "
                                      "(--tenant-max-clones)",
                                      (unsigned)uid, u.clones, (long long)max);
        uint64_t more = (uint64_t)n * e->ram_size + (e->base ? 0 : e->nonzero_bytes);
        if (mem && u.memory + more > mib(mem))
                return sprout_err_set(err, -EDQUOT,
                                      "tenant %u's clones and bases may commit %llu MiB of guest "
                                      "memory, %llu MiB more would make %llu "
                                      "(--tenant-max-guest-memory-mib)",
                                      (unsigned)uid, (unsigned long long)mem,
                                      (unsigned long long)(more >> 20),
                                      (unsigned long long)((u.memory + more) >> 20));
        return 0;
}

int quota_disk_locked(const struct sproutd *d, const struct dsnap *e, struct sprout_err *err)
{
        int64_t max = d->cfg.tenant_max_disk_mib;
        if (e->owner == 0 || !max)
                return 0;
        struct tenant_use u;
        quota_use_locked(d, e->owner, &u);
        if (u.disk <= mib(max))
                return 0;
        return sprout_err_set(err, -EDQUOT,
                              "tenant %u's snapshots would take %llu MiB of disk with this one "
                              "(%llu MiB) and may take %lld (--tenant-max-disk-mib): delete one "
                              "first",
                              (unsigned)e->owner, (unsigned long long)(u.disk >> 20),
                              (unsigned long long)(e->file_size >> 20), (long long)max);
}

int quota_prewarm_locked(const struct sproutd *d, uid_t uid, struct sprout_err *err)
{
        if (uid == 0)
                return 0;
        struct tenant_use u;
        quota_use_locked(d, uid, &u);
        int64_t ms = d->cfg.tenant_max_snapshots, mp = d->cfg.tenant_max_prewarms;
        int64_t md = d->cfg.tenant_max_disk_mib;
        if (mp && (int64_t)u.prewarms >= mp)
                return sprout_err_set(err, -EDQUOT,
                                      "tenant %u has %u prewarms queued or running and may have "
                                      "%lld (--tenant-max-prewarms)",
                                      (unsigned)uid, u.prewarms, (long long)mp);
        if (ms && (int64_t)u.snapshots >= ms)
                return sprout_err_set(err, -EDQUOT,
                                      "tenant %u holds %u snapshots and may hold %lld "
                                      "(--tenant-max-snapshots): delete one first",
                                      (unsigned)uid, u.snapshots, (long long)ms);
        if (md && u.disk >= mib(md))
                return sprout_err_set(err, -EDQUOT,
                                      "tenant %u's snapshots take %llu MiB of disk and may take "
                                      "%lld (--tenant-max-disk-mib): delete one first",
                                      (unsigned)uid, (unsigned long long)(u.disk >> 20),
                                      (long long)md);
        return 0;
}
