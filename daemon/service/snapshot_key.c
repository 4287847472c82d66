/* The daemon's snapshot key, STATE_DIR/snapshot.key: made on first start, loaded once. Prewarms
 * write with it, the registry and base loads require it, so a snapshot file edited on disk is
 * refused; foreign files come in through `sprout import` (docs/snapshot-format.md, "Import"). */
#include <errno.h>
#include <stdio.h>

#include "sprout/log.h"
#include "sprout/snapshot.h"
#include "service.h"

int snapshot_key_open(struct sproutd *d, struct sprout_err *err)
{
        char path[4200];
        bool created;
        if (snprintf(path, sizeof(path), "%s/snapshot.key", d->cfg.state_dir) >= (int)sizeof(path))
                return sprout_err_set(err, -ENAMETOOLONG, "state directory path too long");
        int r = snap_key_file_load(path, true, &d->snap_key, &created, err);
        if (r < 0)
                return r;
        if (created)
                sp_info("state: created the snapshot key %s", path);
        return 0;
}

void snapshot_key_close(struct sproutd *d)
{
        snap_key_wipe(&d->snap_key);
}
