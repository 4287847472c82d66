/* KVM tests on a host that has no /dev/kvm at all cannot run: they say so and exit 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE), never as passed. Where /dev/kvm exists they always run,
 * and fail if it does not work; SPROUT_REQUIRE_KVM=1 makes an absent /dev/kvm a failure too. */
#ifndef SPROUT_TEST_KVM_SKIP_H
#define SPROUT_TEST_KVM_SKIP_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define KVM_SKIP_STATUS 77

/* True (after printing why) when the test should exit KVM_SKIP_STATUS. */
static inline bool kvm_absent_skip(void)
{
        if (access("/dev/kvm", F_OK) == 0)
                return false;
        const char *req = getenv("SPROUT_REQUIRE_KVM");
        if (req && *req && *req != '0')
                return false;
        fprintf(stderr, "SKIP: this host has no /dev/kvm, so this KVM test cannot run (set "
                        "SPROUT_REQUIRE_KVM=1 to make that a failure)\n");
        return true;
}

#endif
