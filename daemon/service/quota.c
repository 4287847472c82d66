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
                if (e->status == DSNAP_QUEUED || e->status == DSNAP_BOOTING ||
                    e->status == DSNAP_SNAPSHOTTING)
                        u->prewarms++;
        }
}

int quota_clones_locked(const struct sproutd *d, uid_t uid, unsigned n, struct sprout_err *err)
{
        int64_t max = d->cfg.tenant_max_clones;
        if (uid == 0 || max == 0)
                return 0;
        struct tenant_use u;
        quota_use_locked(d, uid, &u);
        if ((int64_t)u.clones + n <= max)
                return 0;
        return sprout_err_set(err, -EDQUOT,
                              "tenant %u has %u live clones and may have %lld "
                              "(--tenant-max-clones)",
                              (unsigned)uid, u.clones, (long long)max);
}

int quota_prewarm_locked(const struct sproutd *d, uid_t uid, struct sprout_err *err)
{
        if (uid == 0)
                return 0;
        struct tenant_use u;
        quota_use_locked(d, uid, &u);
        int64_t ms = d->cfg.tenant_max_snapshots, mp = d->cfg.tenant_max_prewarms;
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
        return 0;
}
