/* The per-VM KVM thread count and the host advice built from it, without KVM: threads of this
 * process named the way later kernels name KVM's are counted, their names deduplicated and made
 * printable (any process may name a thread), and the advice lines say what they found. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>

#include "../common/check.h"
#include "sprout/floor.h"
#include "vmm_internal.h"

#define NTHREADS 4

static pthread_barrier_t named, counted;
static const char *const thread_names[NTHREADS] = {"kvm-same", "kvm-same", "kvm-a\x1b[1m",
                                                   "kvmish"};

static void *named_thread(void *arg)
{
        prctl(PR_SET_NAME, (unsigned long)arg, 0, 0, 0);
        pthread_barrier_wait(&named);
        pthread_barrier_wait(&counted);
        return NULL;
}

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
                        return false;
        return true;
}

static void test_count(void)
{
        char names[96];
        unsigned before = kvm_threads_now(NULL, 0);
        pthread_t t[NTHREADS];
        pthread_barrier_init(&named, NULL, NTHREADS + 1);
        pthread_barrier_init(&counted, NULL, NTHREADS + 1);
        for (int i = 0; i < NTHREADS; i++)
                REQUIRE(pthread_create(&t[i], NULL, named_thread, (void *)thread_names[i]) == 0,
                        "pthread_create");
        pthread_barrier_wait(&named);
        unsigned now = kvm_threads_now(names, sizeof(names));
        pthread_barrier_wait(&counted);
        for (int i = 0; i < NTHREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&named);
        pthread_barrier_destroy(&counted);

        /* Three of the four are named kvm-...; "kvmish" is not KVM's. */
        CHECK(now == before + 3, "counted %u threads, %u before: want 3 more", now, before);
        CHECK(strstr(names, "kvm-same") && !strstr(strstr(names, "kvm-same") + 1, "kvm-same"),
              "kvm-same listed once: \"%s\"", names);
        CHECK(strstr(names, "kvm-a??1m") != NULL, "escape sequence made plain: \"%s\"", names);
        CHECK(!strstr(names, "kvmish"), "kvmish is not KVM's: \"%s\"", names);
        CHECK(printable(names), "names printable: \"%s\"", names);

        unsigned after = kvm_threads_now(NULL, 0);
        CHECK(after == before, "%u threads after they ended, %u before", after, before);
}

static void test_advice(void)
{
        struct sprout_host_advice a[4];
        struct sprout_floor f;
        memset(&f, 0, sizeof(f));
        f.kvm_threads = 2;
        snprintf(f.kvm_thread_names, sizeof(f.kvm_thread_names), "kvm-nx-lpage-recovery");
        size_t n = sprout_host_advice(&f, a, 4);
        REQUIRE(n >= 1 && n <= 4, "%zu lines", n);
        CHECK(strstr(a[0].text, "2 threads for every VM") &&
                  strstr(a[0].text, "kvm-nx-lpage-recovery"),
              "first line names the threads: %s", a[0].text);
        for (size_t i = 0; i < n; i++)
                CHECK(a[i].text[0] && printable(a[i].text), "line %zu: %s", i, a[i].text);

        f.kvm_threads = 0;
        f.kvm_thread_names[0] = '\0';
        n = sprout_host_advice(&f, a, 4);
        for (size_t i = 0; i < n; i++)
                CHECK(!strstr(a[i].text, "for every VM on this host"),
                      "no thread line without threads: %s", a[i].text);
        CHECK(sprout_host_advice(&f, a, 0) == 0, "max 0 gives no line");
        f.kvm_threads = 1;
        CHECK(sprout_host_advice(&f, a, 1) == 1, "max 1 gives one line");
        CHECK(sprout_host_advice(NULL, a, 4) <= 1, "no floor: at most the debugfs line");
}

int main(void)
{
        test_count();
        test_advice();
        return check_finish();
}
