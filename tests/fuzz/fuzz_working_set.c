/* libFuzzer target: the working-set section of a snapshot (sprout_working_set_parse), which a
 * loaded base trusts to say where in a clone's RAM to pre-fault. Whatever it accepts must lie
 * inside RAM, in order, with the counts it reports. The first 2 input bytes pick the RAM size (in
 * 2 MiB units, as sprout's RAM sizes are), the rest is the section. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sprout/vmstate.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        fuzz_setup();
        return 0;
}

static void check_runs(const struct sprout_ws_run *r, uint32_t n, uint64_t pages, uint64_t total)
{
        uint64_t end = 0, sum = 0;
        for (uint32_t i = 0; i < n; i++) {
                if (r[i].npages == 0 || r[i].first < end ||
                    (uint64_t)r[i].first + r[i].npages > pages)
                        abort();
                end = (uint64_t)r[i].first + r[i].npages;
                sum += r[i].npages;
        }
        if (sum != total)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2)
                return 0;
        uint64_t ram = ((uint64_t)(data[0] | data[1] << 8) % 1536 + 1) << 21; /* up to 3 GiB */
        struct sprout_working_set ws;
        struct sprout_err err = {0};
        int rc = sprout_working_set_parse(data + 2, size - 2, ram, &ws, &err);
        fuzz_note("sprout_working_set_parse", rc, &err);
        if (rc == 0) {
                check_runs(ws.runs, ws.nread, ram / 4096, ws.read_pages);
                check_runs(ws.runs + ws.nread, ws.nwrite, ram / 4096, ws.write_pages);
                sprout_working_set_free(&ws);
        } else if (ws.runs) {
                abort(); /* nothing is handed back on failure */
        }
        return 0;
}
