/* The private stack of wsched.h's inline spawn and sync (forkjoin.c):
 * children run exactly once whichever path spawned and joined them (the
 * inline one, the library's from a WSCHED_NO_INLINE file, or the implicit
 * join), past the stack's capacity too; a private child becomes stealable
 * when its sibling blocks, and before an in-job wait. */
#include <errno.h>
#include <stdatomic.h>

#include "check.h"
#include "fj_private.h"

/* --- a tree whose every node picks its spawn and sync paths by its id */

#define WIDE 300 /* the root's children: more than the private stack holds */
#define DEPTH 5  /* then binary subtrees this deep */
#define NODES (1 + WIDE * ((1u << (DEPTH + 1)) - 1))

struct node {
    unsigned depth, first, nkids; /* children: nodes[first .. first + nkids) */
    atomic_int runs;
};
static struct node nodes[NODES];

static void build(void)
{
    unsigned next = 1;
    nodes[0] = (struct node){.depth = 0, .first = next, .nkids = WIDE};
    next += WIDE;
    /* Breadth first: node i's children follow all nodes before them. */
    for (unsigned i = 1; i < NODES; i++) {
        if (i <= WIDE)
            nodes[i].depth = 1;
        unsigned kids = nodes[i].depth <= DEPTH ? 2 : 0;
        nodes[i].first = next;
        nodes[i].nkids = kids;
        for (unsigned k = 0; k < kids; k++)
            nodes[next + k].depth = nodes[i].depth + 1;
        next += kids;
    }
    CHECK_EQ(next, NODES);
    for (unsigned i = 0; i < NODES; i++)
        atomic_store(&nodes[i].runs, 0);
}

static void visit(wsched_ctx *ctx, void *arg)
{
    struct node *n = arg;
    unsigned id = (unsigned)(n - nodes);
    atomic_fetch_add_explicit(&n->runs, 1, memory_order_relaxed);
    for (unsigned k = 0; k < n->nkids; k++) {
        struct node *c = &nodes[n->first + k];
        if ((id + k) % 3 == 0)
            CHECK_OK(fj_spawn_lib(ctx, visit, c));
        else
            CHECK_OK(wsched_spawn(ctx, visit, c));
    }
    switch (id % 4) {
    case 0: CHECK_OK(wsched_sync(ctx)); break;
    case 1: CHECK_OK(fj_sync_lib(ctx)); break;
    case 2: break; /* joined when we return (the args are not on our stack) */
    default: /* join, then join again with nothing left: a no-op */
        CHECK_OK(wsched_sync(ctx));
        CHECK_OK(fj_sync_lib(ctx));
        CHECK_OK(wsched_sync(ctx));
        break;
    }
}

static int tree_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    visit(ctx, &nodes[0]);
    CHECK_OK(wsched_sync(ctx));
    return 0;
}

static void test_tree(unsigned workers)
{
    for (int round = 0; round < 5; round++) {
        wsched_pool *pool = check_pool(workers);
        build();
        wsched_batch_desc d = {.fn = tree_job, .njobs = 1};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
        for (unsigned i = 0; i < NODES; i++)
            CHECK_EQ(atomic_load(&nodes[i].runs), 1);
        wsched_pool_stats st;
        CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
        CHECK_EQ(st.total.tasks, NODES - 1); /* every node but the root is a task */
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("tree of %u tasks, mixed paths, %u workers: ok\n", NODES - 1, workers);
}

/* --- a private child is stolen once its sibling blocks */

struct trio {
    atomic_int y_started, y_runs, x_runs;
    int y_worker, z_worker, y_before_z;
};

static void x_task(wsched_ctx *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add(&((struct trio *)arg)->x_runs, 1);
}

static void y_task(wsched_ctx *ctx, void *arg)
{
    struct trio *t = arg;
    t->y_worker = wsched_ctx_worker(ctx);
    atomic_fetch_add(&t->y_runs, 1);
    atomic_store(&t->y_started, 1);
}

static void z_task(wsched_ctx *ctx, void *arg)
{
    struct trio *t = arg;
    t->z_worker = wsched_ctx_worker(ctx);
    t->y_before_z = atomic_load(&t->y_started);
    CHECK_OK(wsched_blocking(ctx)); /* Y, private, must become stealable */
    uint64_t give_up = common_now_ns() + 20000000000ull * (uint64_t)check_slow();
    while (!atomic_load(&t->y_started) && common_now_ns() < give_up)
        ;
    CHECK_EQ(atomic_load(&t->y_started), 1);
}

static int trio_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    struct trio t = {0};
    CHECK_OK(wsched_spawn(ctx, x_task, &t)); /* the deque is empty: to it */
    CHECK_OK(wsched_spawn(ctx, y_task, &t)); /* then private, as a rule */
    CHECK_OK(wsched_spawn(ctx, z_task, &t));
    CHECK_OK(wsched_sync(ctx)); /* pops Z first */
    CHECK_EQ(atomic_load(&t.x_runs), 1);
    CHECK_EQ(atomic_load(&t.y_runs), 1);
    /* Z spun until Y had started (z_task's check): on another worker,
     * unless Y had run before Z started (a thief took both, in turn). */
    CHECK(t.y_worker != t.z_worker || t.y_before_z);
    return 0;
}

static void test_blocking_shares(void)
{
    wsched_pool *pool = check_pool(2);
    for (int round = 0; round < 20; round++) {
        wsched_batch_desc d = {.fn = trio_job, .njobs = 1};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(check_status(b, 0), 0);
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("a private child stolen while its sibling blocks: 20 rounds: ok\n");
}

/* --- an in-job wait runs (or lets others run) the private children
 *
 * The parent spawns C (private: on one worker always, on two when the deque
 * holds the dummy it spawned first), then waits inside the job for batch B,
 * whose one job waits on a waker that only C wakes. Nothing else can run C:
 * unless the wait moves it to the deque, where the parent's own helping or
 * the other worker finds it, B never completes. Each side stores, then
 * loads the other's word (seq_cst both): C wakes B's waker when it is
 * armed, B's job wakes itself when C already ran, or both (one counts). */

static atomic_int c_done, waker_set;
static wsched_waker b_waker;

static void c_task(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_store(&c_done, 1);
    if (atomic_load(&waker_set)) {
        int r = wsched_wake(b_waker, 1);
        CHECK(r == 0 || r == -EALREADY);
    }
}

static void noop_task(wsched_ctx *ctx, void *arg) { (void)ctx, (void)arg; }

static int needs_c(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    if (wsched_resume_kind(ctx) == WSCHED_RESUME_FIRST) {
        uint64_t give_up = wsched_now_ns() + 20000000000ull * (uint64_t)check_slow();
        CHECK_OK(wsched_waker_arm(ctx, give_up, &b_waker));
        atomic_store(&waker_set, 1);
        if (atomic_load(&c_done)) {
            int r = wsched_wake(b_waker, 1);
            CHECK(r == 0 || r == -EALREADY);
        }
        return WSCHED_PENDING;
    }
    *(int *)slot = wsched_resume_kind(ctx) == WSCHED_RESUME_WOKEN;
    return 0;
}

static int waiting_parent(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)i, (void)slot;
    wsched_pool *pool = arg;
    atomic_store(&c_done, 0);
    atomic_store(&waker_set, 0);
    CHECK_OK(wsched_spawn(ctx, noop_task, NULL)); /* to the deque (two workers) */
    CHECK_OK(wsched_spawn(ctx, c_task, NULL));    /* private */
    wsched_batch_desc d = {.fn = needs_c, .njobs = 1, .slot_size = sizeof(int),
                           .flags = WSCHED_BATCH_WAITS};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1)); /* helps meanwhile */
    CHECK_EQ(*(int *)wsched_batch_slot(b, 0), 1); /* woken, not timed out */
    wsched_batch_free(b);
    CHECK_OK(wsched_sync(ctx));
    return 0;
}

static void test_wait_shares(unsigned workers)
{
    wsched_pool *pool = check_pool(workers);
    for (int round = 0; round < 20; round++) {
        wsched_batch_desc d = {.fn = waiting_parent, .arg = pool, .njobs = 1};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("an in-job wait with a private child, %u worker(s): 20 rounds: ok\n", workers);
}

int main(void)
{
    check_watchdog(120);
    for (unsigned w = 1; w <= 4; w *= 2)
        test_tree(w);
    test_blocking_shares();
    test_wait_shares(1);
    test_wait_shares(2);
    printf("test_fj_private: ok\n");
    return 0;
}
