/*
 * Keyed de-duplication (single-flight, wsched.h: flight_key): jobs that
 * carry the key of a job in flight join it instead of running; when it
 * ends, each joiner still waiting gets a copy of its slot and its status.
 *
 * The flights of a downstream are nodes of liburcu's lock-free hash table
 * (rculfhash, memb flavour: a worker registers as a reader on its first
 * flight; nodes are freed after a grace period by call_rcu). A node holds
 * the joiners on Treiber stacks of their wait records, whose only
 * consumer is the flight's leader: FLIGHT_SHARDS stacks, on lines of
 * their own, a joiner pushing onto its worker's (index % FLIGHT_SHARDS),
 * so that joiners on two workers do not take turns at one line (a join
 * on 2 workers cost 110 ns more than on 1 with a single stack). Each
 * stack is closed (FLIGHT_CLOSED) on its own; "the stack" below is all
 * of them.
 *  (F1) lead: add_unique of a new node; the winner leads (it runs the job).
 *  (F2) join: arm a waker-like cell wait on the joiner's own record (its
 *       deadline timer too), take a reference on its batch (the leader
 *       reads the record and its job state later, even after the joiner
 *       was detached and its batch completed), then push the record by
 *       CAS (RELEASE: the armed cell and the link before the push) unless
 *       the stack is CLOSED: then undo (drop the wait; a cancellation that
 *       won first makes it pending after all) and look the key up again.
 *  (F3) the leader's end, with a result: CLOSE the stack (exchange,
 *       ACQ_REL: every push before it is ours, none after), unlink the
 *       node (del, then call_rcu), and for each joiner claim its cell
 *       (WOKEN): winning, copy the slot and the status into the joiner,
 *       then give the completion's unit (C4, whose RELEASE publishes the
 *       copy to the joiner's resumption); losing, the joiner has detached
 *       (its own cancel or deadline). Then drop its batch reference.
 *  (F4) the leader's end without a result (its own batch cancelled, its
 *       deadline, the pool's destroy): the flight is not cancelled while
 *       a joiner waits: pop joiners until a claim wins, and that joiner
 *       leads from then on (it is resumed to run the job itself); with
 *       none left, F3 with nothing to deliver. Only the leader pops, so
 *       the pops see no ABA: a record on the stack is pending until its
 *       leader claimed it or it detached, and never pushed twice.
 * A joiner's detach touches only its own cell: the flight and the other
 * joiners never see it (janos/singleflight#4: a cancelled joiner removing
 * the key; tailscale#18919: a caller's cancel reaching the others).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "batch.h"
#include "downstream.h"
#include "probes.h"
#include "tsan.h"
#include "waitq.h"

#define FLIGHT_SHARDS 4
struct flight {
    /* Read by the joiners, written once (and node.next by the table). */
    struct cds_lfht_node node;
    uint64_t key;
    size_t slot_size;
    struct downstream *ds;
    struct rcu_head rcu;
    /* F2-F4; each FLIGHT_CLOSED once ending. (The node is allocated
     * CACHELINE-aligned: ds_mem_alloc.) */
    struct {
        cacheline_aligned _Atomic(struct job_wait *) top;
    } joiners[FLIGHT_SHARDS];
};
#define FLIGHT_CLOSED ((struct job_wait *)(uintptr_t)1)

/* This thread is a registered RCU reader: a worker registers on its first
 * flight, and a pthread key's destructor unregisters it when the thread
 * exits (liburcu must not keep a dead reader). The key is deleted when the
 * library is unloaded (as the batch cache's, mem.c), so a thread exiting
 * after dlclose runs no destructor that is gone. */
static WSCHED_TLS bool rcu_reader;
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static bool reader_key_made;

static void reader_exit(void *unused)
{
    (void)unused;
    if (rcu_reader) {
        urcu_memb_unregister_thread();
        rcu_reader = false;
    }
}

static void reader_key_make(void)
{
    reader_key_made = pthread_key_create(&reader_key, reader_exit) == 0;
}

__attribute__((destructor)) static void reader_key_drop(void)
{
    if (reader_key_made)
        (void)pthread_key_delete(reader_key);
}

static void reader(void)
{
    if (rcu_reader)
        return;
    pthread_once(&reader_once, reader_key_make);
    urcu_memb_register_thread();
    rcu_reader = true;
    if (reader_key_made)
        (void)pthread_setspecific(reader_key, &rcu_reader); /* non-NULL: the destructor runs */
}

int wsched__flight_init(struct downstream *ds)
{
    ds->flights = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE, &urcu_memb_flavor, NULL);
    return ds->flights ? 0 : -ENOMEM;
}

void wsched__flight_fini(struct downstream *ds)
{
    if (!ds->flights)
        return;
    urcu_memb_barrier(); /* the nodes' call_rcu frees, before the table goes */
    tsan_acquire(ds);    /* (the barrier's wait, which TSan cannot see) */
    cds_lfht_destroy(ds->flights, NULL);
    ds->flights = NULL;
}

/* liburcu's publication (add_unique) and grace periods are inline asm
 * and membarrier, which TSan cannot see, hence annotations (src/tsan.h):
 * release before add_unique and acquire at a reader's first touch of a
 * node; release after a reader's last touch and acquire in the call_rcu
 * callback that frees it. */
static int match(struct cds_lfht_node *node, const void *key)
{
    const struct flight *f = caa_container_of(node, struct flight, node);
    tsan_acquire(f);
    bool same = f->key == *(const uint64_t *)key;
    tsan_release(f);
    return same;
}

static void free_flight(struct rcu_head *h)
{
    struct flight *f = caa_container_of(h, struct flight, rcu);
    tsan_acquire(f);
    struct downstream *ds = f->ds;
    ds_mem_free(ds_allocator(ds), f, sizeof *f);
    tsan_release(ds); /* our last touch of the downstream: before its free (fini) */
}

static unsigned long hash_of(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (unsigned long)key;
}

/* F2: join f with job i of b: JOIN_OK (pending now), JOIN_CLOSED (f is
 * closing; nothing armed), JOIN_NO (no wait can be armed: the pool is
 * being destroyed, or no memory for a cell; the job runs unshared). */
enum { JOIN_OK, JOIN_CLOSED, JOIN_NO };
static int join(struct worker *w, struct flight *f, struct wsched_batch *b, size_t i)
{
    struct job_wait *jw = &b->waits[i];
    struct job_pol *jp = &b->pol[i];
    if (ld(&w->pool->handle->state, RLX) != POOL_ALIVE ||
        wsched__wait_arm(w, jw, WSCHED_RESUME_WOKEN, 0, NULL) != 0)
        return JOIN_NO;
    if (b->deadline)
        wsched__timer_arm(w, jw, b->deadline); /* our own deadline detaches us */
    jp->phase = PH_JOINED;
    fadd(&b->refs, 1, RLX); /* the flight's: dropped by the leader (F3) */
    _Atomic(struct job_wait *) *top = &f->joiners[w->index % FLIGHT_SHARDS].top;
    struct job_wait *head = ld(top, RLX);
    for (;;) {
        if (head == FLIGHT_CLOSED)
            break;
        jp->fnext = head;
        if (cas_weak(top, &head, jw, REL)) { /* F2 */
            tsan_release(f); /* our last touch of the node (see match) */
            PROBE2(joined, b, i);
            /* Counted before J2': from there we may be resumed and our
             * batch completed, and the downstream destroyed. */
            DS_COUNT(b->ds, joined);
            wsched__wait_pending(w, jw); /* J2': our last touch of jw */
            return JOIN_OK;
        }
    }
    /* Closed: undo, unless a canceller (or our deadline's timer) claimed
     * jw first: then we are pending after all, resumed as cancelled, and
     * J2' hands jw on. As on the push's path, all we write comes before
     * it: phase stays PH_JOINED, `joined` is counted. (Once phase was
     * cleared before the claim and set again after J2': the resumption,
     * run at once on another worker, took it for a first call's and
     * called the job with attempt 0; fuzz_downstream, its
     * crashes-fuzz_downstream/join_closed_cancelled.) */
    tsan_release(f);
    fsub(&b->refs, 1, RLX); /* ours again: the caller's job holds the batch */
    if (!wsched__wait_claim(w->pool, jw, CELL_CANCELLED)) {
        DS_COUNT(b->ds, joined);
        wsched__wait_pending(w, jw); /* J2': our last touch of jw */
        return JOIN_OK;
    }
    wsched__wait_unarm(w, jw);
    jp->phase = PH_NONE;
    jw->armed = 0;
    return JOIN_CLOSED;
}

int wsched__flight_enter(struct worker *w, struct downstream *ds, struct wsched_batch *b,
                         size_t i, uint64_t key)
{
    reader();
    unsigned long h = hash_of(key);
    struct flight *mine = NULL;
    int r = FLIGHT_NONE;
    unsigned spins = 0;
    urcu_memb_read_lock();
    for (;;) {
        struct cds_lfht_iter it;
        cds_lfht_lookup(ds->flights, h, match, &key, &it);
        struct cds_lfht_node *nd = cds_lfht_iter_get_node(&it);
        if (!nd) {
            if (!mine && !(mine = ds_mem_alloc(ds_allocator(ds), sizeof *mine)))
                break; /* no memory: run unshared */
            cds_lfht_node_init(&mine->node);
            mine->key = key;
            mine->slot_size = b->slot_size;
            mine->ds = ds;
            for (unsigned k = 0; k < FLIGHT_SHARDS; k++)
                st(&mine->joiners[k].top, NULL, RLX);
            tsan_release(mine);
            nd = cds_lfht_add_unique(ds->flights, h, match, &key, &mine->node); /* F1 */
            if (nd == &mine->node) {
                b->pol[i].flight = mine;
                mine = NULL;
                r = FLIGHT_LEAD;
                DS_COUNT(ds, flights);
                break;
            }
            /* Another job's node came first (never published: free it now,
             * while the downstream is surely alive). */
            ds_mem_free(ds_allocator(ds), mine, sizeof *mine);
            mine = NULL;
        }
        struct flight *f = caa_container_of(nd, struct flight, node);
        tsan_acquire(f);
        bool same = f->slot_size == b->slot_size;
        tsan_release(f); /* (join's touches are atomics, and f->ds: see join) */
        if (!same)
            break; /* another shape of job: run unshared (wsched.h) */
        DEBUG_ASSERT(!mine);
        int j = join(w, f, b, i);
        if (j == JOIN_OK) {
            r = FLIGHT_JOINED; /* nothing of b, i or ds is ours any more */
            break;
        }
        if (j == JOIN_NO)
            break; /* run unshared (wsched.h) */
        /* Closing: its leader unlinks it in a moment (between two of its
         * instructions; yield if it was preempted there). */
        urcu_memb_read_unlock();
        if (++spins % 64 == 0)
            sched_yield();
        else
            cpu_relax();
        urcu_memb_read_lock();
    }
    urcu_memb_read_unlock();
    return r;
}

/* F3 for one joiner: deliver (or skip a detached one), then drop the
 * flight's reference on its batch. */
static void deliver(struct job_wait *jw, const char *slot, size_t slot_size, int status)
{
    struct wsched_batch *jb = jw->b;
    size_t j = jw->index;
    struct job_pol *jp = &jb->pol[j];
    if (wsched__wait_claim(jb->pool, jw, CELL_WOKEN)) {
        if (slot_size && jb->slots)
            memcpy(jb->slots + j * jb->stride, slot, slot_size);
        st(&jp->hcode, status, RLX); /* published by C4 */
        wsched__wait_set_value(jb->pool, jw, FLIGHT_VALUE_DONE);
        wsched__wait_done_remote(jb->pool, jw); /* C4 */
    }
    wsched__batch_unref(jb);
}

/* F4: pop joiners, stack by stack, until a claim wins: that one leads
 * from its resumption (true). With every stack seen empty, close them
 * all; if a push came to one meanwhile, reopen those closed (only we
 * write a closed stack: a joiner that saw it closed looks the key up
 * again and finds the node still there) and pop again. False: all
 * closed, nobody waits. */
static bool hand_over(struct flight *f, struct downstream *ds)
{
    for (;;) {
        for (unsigned k = 0; k < FLIGHT_SHARDS; k++) {
            _Atomic(struct job_wait *) *top = &f->joiners[k].top;
            struct job_wait *head = ld(top, ACQ); /* never CLOSED here: see below */
            while (head) {
                struct job_wait *next = head->b->pol[head->index].fnext;
                if (!cas_weak(top, &head, next, AR))
                    continue; /* a push came: head reloaded */
                struct wsched_batch *jb = head->b;
                if (wsched__wait_claim(jb->pool, head, CELL_WOKEN)) {
                    /* Ours until C4 gives the unit: it leads from its resumption. */
                    jb->pol[head->index].flight = f;
                    wsched__wait_set_value(jb->pool, head, FLIGHT_VALUE_LEAD);
                    DS_COUNT(ds, flight_handovers);
                    PROBE2(flight_handover, jb, head->index);
                    wsched__wait_done_remote(jb->pool, head); /* C4 */
                    wsched__batch_unref(jb);
                    return true;
                }
                wsched__batch_unref(jb); /* detached */
                head = ld(top, ACQ);
            }
        }
        unsigned k = 0;
        for (; k < FLIGHT_SHARDS; k++) {
            struct job_wait *none = NULL;
            if (!cas(&f->joiners[k].top, &none, FLIGHT_CLOSED, AR))
                break; /* a push came to stack k */
        }
        if (k == FLIGHT_SHARDS)
            return false;
        while (k-- > 0) /* reopen: NULL publishes nothing (RELAXED) */
            st(&f->joiners[k].top, NULL, RLX);
    }
}

void wsched__flight_leave(struct wsched_batch *b, size_t i, int status, bool result)
{
    struct job_pol *jp = &b->pol[i];
    struct flight *f = jp->flight;
    jp->flight = NULL;
    struct downstream *ds = f->ds;
    struct job_wait *lists[FLIGHT_SHARDS] = {NULL};
    if (!result) {
        /* F4: hand the flight over to a joiner still waiting. */
        if (hand_over(f, ds))
            return;
    } else {
        /* F3: every stack closed, each by one exchange. */
        for (unsigned k = 0; k < FLIGHT_SHARDS; k++)
            lists[k] = xchg(&f->joiners[k].top, FLIGHT_CLOSED, AR);
    }
    reader();
    urcu_memb_read_lock();
    cds_lfht_del(ds->flights, &f->node);
    urcu_memb_read_unlock();
    tsan_release(f);
    urcu_memb_call_rcu(&f->rcu, free_flight);
    const char *slot = b->slots ? b->slots + i * b->stride : NULL;
    for (unsigned k = 0; k < FLIGHT_SHARDS; k++) {
        for (struct job_wait *jw = lists[k], *next; jw; jw = next) {
            next = jw->b->pol[jw->index].fnext;
            deliver(jw, slot, b->slot_size, status);
        }
    }
}
