/* Host settings that cost every VM something sprout cannot avoid from user space, said as lines an
 * operator can act on (docs/workers.md, "Limits for many clones"). Read from what the host
 * exposes: KVM's module parameters, the CPU's vulnerability list, the registered file systems,
 * and the threads a measured floor VM got. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sprout/floor.h"

#define NX_PARAM "/sys/module/kvm/parameters/nx_huge_pages"

/* The first line of a small file, without its newline; "" when it cannot be read. */
static void first_line(const char *path, char *out, size_t len)
{
        out[0] = '\0';
        FILE *f = fopen(path, "r");
        if (!f)
                return;
        if (!fgets(out, (int)len, f))
                out[0] = '\0';
        fclose(f);
        out[strcspn(out, "\n")] = '\0';
}

static bool fs_registered(const char *name)
{
        char line[128];
        bool found = false;
        FILE *f = fopen("/proc/filesystems", "r");
        while (f && !found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                const char *tab = strrchr(line, '\t');
                found = !strcmp(tab ? tab + 1 : line, name);
        }
        if (f)
                fclose(f);
        return found;
}

size_t sprout_host_advice(const struct sprout_floor *f, struct sprout_host_advice *out, size_t max)
{
        size_t n = 0;
        char nx[32], multihit[128];
        first_line(NX_PARAM, nx, sizeof(nx));
        first_line("/sys/devices/system/cpu/vulnerabilities/itlb_multihit", multihit,
                   sizeof(multihit));
        if (n < max && f && f->kvm_threads) {
                /* Linux 6.1 starts the NX huge page recovery thread for every VM even with the
                 * mitigation off; only "never" (Linux 6.4 and the stable kernels it went back
                 * to) stops that, and KVM takes it only while no VM exists. */
                bool nx_thread = strstr(f->kvm_thread_names, "nx-lpage") != NULL;
                bool safe = !strcmp(multihit, "Not affected");
                /* Some hosts' KVM makes the parameter read-only: then only the command line. */
                bool writable = access(NX_PARAM, W_OK) == 0;
                snprintf(
                    out[n++].text, sizeof(out[0].text),
                    "KVM starts %u thread%s for every VM on this host (%s): a kernel stack "
                    "and a task per clone%s",
                    f->kvm_threads, f->kvm_threads == 1 ? "" : "s", f->kvm_thread_names,
                    !nx_thread || !strcmp(nx, "never") ? ""
                    : !safe ? "; it carries the iTLB multihit mitigation this CPU needs"
                    : writable
                        ? "; this CPU is not affected by iTLB multihit, so `echo never > " NX_PARAM
                          "` while no VM runs (or kvm.nx_huge_pages=never on the "
                          "kernel command line) removes it"
                        : "; this CPU is not affected by iTLB multihit, so booting with "
                          "kvm.nx_huge_pages=never removes it (" NX_PARAM " is read-only here)");
        }
        if (n < max && fs_registered("debugfs"))
                snprintf(out[n++].text, sizeof(out[0].text),
                         "KVM makes a debugfs directory of statistics files for every VM (slab "
                         "per clone, and CPU at each VM's creation): a host booted with "
                         "debugfs=off does not");
        return n;
}
