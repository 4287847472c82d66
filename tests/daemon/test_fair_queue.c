/* The worker queue's order (daemon/service/fair_queue.c), white box: tenants served round-robin,
 * each one's running share and waiting share, requests for one clone one at a time, deadlines,
 * and slots given back. No threads: the pool serializes every call, and so does this test. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../common/check.h"
#include "service.h"

#define N 64

static struct fq_item items[N];

static struct fq_item *item(unsigned i, uint32_t tenant, uint64_t key, int64_t deadline)
{
        items[i] = (struct fq_item){.tenant = tenant, .key = key, .deadline_ns = deadline};
        return &items[i];
}

static int idx(const struct fq_item *it)
{
        return it ? (int)(it - items) : -1;
}

/* A floods, B asks twice: B's requests run second and fourth, not after all of A's. */
static void round_robin(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 32, 16, 8, 8) == 0, "fq_init");
        for (unsigned i = 0; i < 10; i++)
                CHECK(fq_push(&q, item(i, 1000, 0, 0)) == 0, "push A %u", i);
        CHECK(fq_push(&q, item(10, 2000, 0, 0)) == 0, "push B 0");
        CHECK(fq_push(&q, item(11, 2000, 0, 0)) == 0, "push B 1");
        int order[6];
        bool expired;
        for (int k = 0; k < 6; k++) {
                struct fq_item *it = fq_pop(&q, 0, &expired);
                order[k] = idx(it);
                CHECK(it && !expired, "pop %d", k);
        }
        CHECK(order[0] == 0 && order[1] == 10 && order[2] == 1 && order[3] == 11 && order[4] == 2 &&
                  order[5] == 3,
              "order %d %d %d %d %d %d: A0 B0 A1 B1 A2 A3", order[0], order[1], order[2], order[3],
              order[4], order[5]);
        CHECK(q.n == 6, "6 still waiting (%u)", q.n);
        fq_free(&q);
}

/* A tenant at its running share waits; another tenant runs meanwhile; done frees the share. */
static void running_share(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 32, 16, 2, 4) == 0, "fq_init");
        for (unsigned i = 0; i < 4; i++)
                fq_push(&q, item(i, 1, 0, 0));
        bool expired;
        struct fq_item *a = fq_pop(&q, 0, &expired), *b = fq_pop(&q, 0, &expired);
        CHECK(idx(a) == 0 && idx(b) == 1, "A's first two run (%d %d)", idx(a), idx(b));
        CHECK(fq_pop(&q, 0, &expired) == NULL, "A's third waits for its share");
        fq_push(&q, item(4, 2, 0, 0));
        CHECK(idx(fq_pop(&q, 0, &expired)) == 4, "B runs while A is at its share");
        fq_done(&q, a);
        CHECK(idx(fq_pop(&q, 0, &expired)) == 2, "A's third runs once one of A's is done");
        fq_free(&q);
}

/* The queue's bound and a tenant's share of it. */
static void waiting_share(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 5, 3, 1, 2) == 0, "fq_init");
        for (unsigned i = 0; i < 3; i++)
                CHECK(fq_push(&q, item(i, 7, 0, 0)) == 0, "push %u", i);
        CHECK(fq_push(&q, item(3, 7, 0, 0)) == -EDQUOT, "a 4th of one tenant's: -EDQUOT");
        CHECK(fq_tenant_queued(&q, 7) == 3, "3 of tenant 7's waiting");
        CHECK(fq_push(&q, item(4, 8, 0, 0)) == 0 && fq_push(&q, item(5, 8, 0, 0)) == 0,
              "another tenant still has room");
        CHECK(fq_push(&q, item(6, 9, 0, 0)) == -EAGAIN, "a full queue: -EAGAIN");
        fq_free(&q);
}

/* Requests for one clone run one at a time; another clone's run meanwhile. */
static void keys(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 32, 16, 8, 4) == 0, "fq_init");
        fq_push(&q, item(0, 1, 42, 0));
        fq_push(&q, item(1, 1, 42, 0));
        fq_push(&q, item(2, 1, 42, 0));
        fq_push(&q, item(3, 1, 43, 0));
        bool expired;
        struct fq_item *a = fq_pop(&q, 0, &expired);
        CHECK(idx(a) == 0, "the clone's first runs");
        CHECK(idx(fq_pop(&q, 0, &expired)) == 3, "another clone's request passes the waiting ones");
        CHECK(fq_pop(&q, 0, &expired) == NULL, "the clone's second waits, holding no thread");
        fq_done(&q, a);
        CHECK(idx(fq_pop(&q, 0, &expired)) == 1, "then it runs, in order");
        fq_free(&q);
}

/* A request waiting on a busy clone past its deadline is handed back expired, not run. */
static void deadlines(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 32, 16, 8, 4) == 0, "fq_init");
        fq_push(&q, item(0, 1, 5, 1000));
        fq_push(&q, item(1, 1, 5, 2000));
        fq_push(&q, item(2, 1, 5, 1500));
        bool expired;
        struct fq_item *a = fq_pop(&q, 0, &expired);
        CHECK(idx(a) == 0 && !expired, "the first runs");
        CHECK(fq_next_deadline(&q) == 1500, "next deadline 1500 (%lld)",
              (long long)fq_next_deadline(&q));
        CHECK(fq_pop(&q, 1499, &expired) == NULL, "nothing before the deadline");
        struct fq_item *e = fq_pop(&q, 1500, &expired);
        CHECK(idx(e) == 2 && expired, "the one due at 1500 expires (%d %d)", idx(e), expired);
        CHECK(q.n == 1 && fq_next_deadline(&q) == 2000, "one left, due at 2000");
        fq_done(&q, a);
        e = fq_pop(&q, 1600, &expired);
        CHECK(idx(e) == 1 && !expired, "the other runs once the clone is free");
        fq_done(&q, e);
        CHECK(q.ntenants == 0 && q.nkeys == 0 && fq_next_deadline(&q) == INT64_MAX,
              "empty again: no tenant slot or key held (%u %u)", q.ntenants, q.nkeys);
        fq_free(&q);
}

/* Tenants come and go many times: slots are given back, and the bounds hold throughout. */
static void churn(void)
{
        struct fair_queue q;
        REQUIRE(fq_init(&q, 8, 8, 2, 2) == 0, "fq_init");
        unsigned ran = 0, bad = 0;
        bool expired;
        for (unsigned round = 0; round < 1000; round++) {
                unsigned k = 0;
                for (unsigned i = 0; i < 8; i++)
                        if (fq_push(&q, item(i, round * 8 + i % 3, i % 2 ? 9 : 0, 0)) < 0)
                                bad++;
                struct fq_item *run[8];
                while (q.n) {
                        struct fq_item *it;
                        while ((it = fq_pop(&q, 0, &expired)))
                                run[k++] = it;
                        if (!k)
                                break;
                        for (unsigned j = 0; j < k; j++)
                                fq_done(&q, run[j]);
                        ran += k;
                        k = 0;
                }
        }
        CHECK(bad == 0 && ran == 8000, "8000 requests ran, none refused (%u, %u refused)", ran,
              bad);
        CHECK(q.ntenants == 0 && q.nkeys == 0 && q.n == 0, "nothing held after the churn");
        fq_free(&q);
}

int main(void)
{
        round_robin();
        running_share();
        waiting_share();
        keys();
        deadlines();
        churn();
        return check_finish();
}
