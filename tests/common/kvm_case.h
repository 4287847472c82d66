/* How a KVM integration test program runs one named case: open /dev/kvm (failing loudly when it
 * exists and cannot be used; skipped only on a host with no /dev/kvm, kvm_skip.h), run the case,
 * print the closing line. */
#ifndef SPROUT_TEST_KVM_CASE_H
#define SPROUT_TEST_KVM_CASE_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kvm_skip.h"
#include "sprout/vmm.h"

struct kvm_case {
        const char *name;
        void (*fn)(void);
};

/* Runs the case called name with *kvm open; returns the process exit status. */
static inline int kvm_case_run(const char *name, const struct kvm_case *cases, size_t n,
                               struct sprout_kvm **kvm)
{
        struct sprout_err err = {0};
        for (size_t i = 0; i < n; i++) {
                if (strcmp(name, cases[i].name) != 0)
                        continue;
                if (kvm_absent_skip())
                        return KVM_SKIP_STATUS;
                if (sprout_kvm_open(kvm, &err) < 0) {
                        fprintf(stderr, "FAIL: KVM tests need a usable /dev/kvm: %s\n", err.msg);
                        printf("0 passed, 1 failed\n");
                        return 1;
                }
                cases[i].fn();
                sprout_kvm_close(*kvm);
                return check_finish();
        }
        fprintf(stderr, "unknown case %s\n", name);
        return 2;
}

#endif
