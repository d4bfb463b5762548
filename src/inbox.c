/* Per-worker inboxes: see inbox.h for the protocol (I1-I4) and priorities. */
#include "inbox.h"

#include "debug.h"
#include "internal.h"
#include "tsan.h"

void inbox_init(struct inbox *q)
{
    __cds_wfcq_init(&q->head, &q->tail);
    st(&q->token, 0, RLX);
    st(&q->pending, 0, RLX);
}

void inbox_push(struct worker *w, unsigned prio, struct inbox_link *l)
{
    struct inbox *q = &w->inbox[prio];
    cds_wfcq_node_init(&l->node);
    fadd(&q->pending, 1, SC); /* I1: counted before it is linked */
    DEBUG_POINT("I1");
    tsan_release(l); /* I4 */
    cds_wfcq_enqueue(&q->head, &q->tail, &l->node); /* I2 */
    /* The caller notifies (wsched__notify_after_sc: I1's RMW is its N1). */
}

enum take { TAKE_NONE, TAKE_OK, TAKE_BUSY };

static inline struct task task_of(struct inbox_link *l)
{
    if (l->kind == INBOX_JOB) {
        struct job_rec *j = caa_container_of(l, struct job_rec, link);
        st(&j->queued, 0, RLX); /* post.c: no longer in an inbox */
        return job_task(j);
    }
    DEBUG_ASSERT(l->kind == INBOX_BATCH);
    struct wsched_batch *b = caa_container_of(l, struct wsched_batch, link);
    st(&b->queued, 0, RLX); /* wait.c: no longer in an inbox */
    return range_task(b->start_fn, b, 0, b->n); /* the whole batch as one range */
}

/* I5, under the token: after a posted job, up to `extra` more posted jobs
 * that follow it in the queue, onto me's deque (stealable there: a taker
 * that is preempted holds back nothing). Pushed newest first, so that our
 * own pops run them in queue order. A batch stops the run: batches are
 * started one per take, in order. Returns how many. */
static __attribute__((noinline)) unsigned take_run(struct worker *me, struct inbox *q,
                                                   unsigned extra)
{
    struct task run[INBOX_RUN_MAX];
    unsigned k = 0;
    while (k < extra) {
        /* The first node, not dequeued: its kind (its fields were
         * published with the link, I4; the pointer's dependency orders
         * the read, as in the dequeue itself). */
        struct cds_wfcq_node *node = __cds_wfcq_first_nonblocking(&q->head, &q->tail);
        if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
            break;
        struct inbox_link *l = caa_container_of(node, struct inbox_link, node);
        tsan_acquire(l); /* I4 */
        if (l->kind != INBOX_JOB)
            break;
        /* WOULDBLOCK even now: it was the last node and a producer is
         * between its tail exchange and its link (the dequeue put it back). */
        if (__cds_wfcq_dequeue_nonblocking(&q->head, &q->tail) != node)
            break;
        run[k++] = task_of(l);
    }
    for (unsigned i = k; i-- > 0;) {
        bool was_empty;
        int r = deque_push_owner(&me->dq, &run[i], &was_empty); /* room checked */
        DEBUG_ASSERT(r == 0);
        (void)r;
        (void)was_empty;
    }
    return k;
}

/* How many posted jobs a take of class c may move onto me's deque beside
 * the one it starts (I5): none unless `run` (the worker loop, outside any
 * job: a wait that helps starts nothing unrelated), none for background,
 * and never past the start that looks for background first, so that the
 * 1-in-8 cadence counts every job started as one start; bounded by the
 * deque's room, so the pushes never allocate. */
static unsigned run_extra(struct worker *me, unsigned c, bool run)
{
    unsigned s = me->starts & 7;
    if (!run || c != WSCHED_PRIO_INTERACTIVE || s >= 6)
        return 0;
    unsigned k = 6 - s; /* starts + 1 + k reaches 7 at most */
    if (k > INBOX_RUN_MAX)
        k = INBOX_RUN_MAX;
    int64_t room = deque_room(&me->dq);
    return room < (int64_t)k ? (room > 0 ? (unsigned)room : 0) : k;
}

/* TAKE_BUSY: the inbox holds a counted batch we could not take now (the
 * token is held, or a producer is between I1 and I2). *more: the extra
 * posted jobs pushed onto me's deque (I5; `q` holds class c). */
static enum take take_from(struct worker *me, struct inbox *q, unsigned c, bool run,
                           struct task *t, unsigned *more)
{
    *more = 0;
    if (ld(&q->pending, RLX) <= 0)
        return TAKE_NONE; /* a hint; the parking re-scan uses SC loads */
    uint32_t free_ = 0;
    if (!cas(&q->token, &free_, 1, ACQ)) /* I3 */
        return TAKE_BUSY;
    struct cds_wfcq_node *node = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
    if (node == NULL || node == CDS_WFCQ_WOULDBLOCK) {
        st(&q->token, 0, REL); /* I3 */
        return TAKE_BUSY; /* counted, not linked yet (I1..I2): later */
    }
    struct inbox_link *l = caa_container_of(node, struct inbox_link, node);
    tsan_acquire(l); /* I4 */
    bool job = l->kind == INBOX_JOB;
    *t = task_of(l);
    unsigned extra = job ? run_extra(me, c, run) : 0;
    unsigned k = extra ? take_run(me, q, extra) : 0;
    st(&q->token, 0, REL); /* I3 */
    int64_t before = fsub(&q->pending, 1 + (int64_t)k, RLX); /* I3 */
    DEBUG_ASSERT(before > (int64_t)k);
    (void)before;
    *more = k; /* the caller repairs a sleeping pool (worker.c, N4) */
    return TAKE_OK;
}

/* The class a start looks for k-th: every 8th start background first. */
static inline unsigned class_order(const struct worker *me, unsigned k)
{
    unsigned first = (me->starts & 7) == 7 ? WSCHED_PRIO_BACKGROUND : WSCHED_PRIO_INTERACTIVE;
    return (first + k) % WSCHED_NPRIO;
}

/* Take class c from the inboxes of workers start, start+1, ... (skipping
 * `skip`): TAKE_OK with *from and *more set, TAKE_BUSY if a class-c batch
 * exists but none could be taken now, else TAKE_NONE. */
static enum take take_class(struct worker *me, unsigned c, unsigned start,
                            const struct worker *skip, struct task *t, unsigned *from,
                            bool run, unsigned *more)
{
    struct pool *p = me->pool;
    enum take res = TAKE_NONE;
    for (unsigned k = 0; k < p->n; k++) {
        unsigned i = (start + k) % p->n;
        if (&p->workers[i] == skip)
            continue;
        enum take r = take_from(me, &p->workers[i].inbox[c], c, run, t, more);
        if (r == TAKE_OK) {
            *from = i;
            return TAKE_OK;
        }
        if (r == TAKE_BUSY)
            res = TAKE_BUSY;
    }
    return res;
}

/* A class-c batch that exists but could not be taken now keeps this start
 * from falling through to a later class: the caller looks again (it is
 * searching, or its loop comes back), so a busy token never lets a
 * background batch overtake a waiting interactive one. */
bool inbox_take_local(struct worker *me, struct task *t, bool run)
{
    unsigned more = 0;
    for (unsigned k = 0; k < WSCHED_NPRIO; k++) {
        unsigned c = class_order(me, k), from;
        enum take r = take_from(me, &me->inbox[c], c, run, t, &more);
        if (r == TAKE_OK)
            goto started;
        if (r == TAKE_BUSY)
            return false;
        /* Our own inbox lacks class c. If it holds a class that comes
         * later for this start, a class-c batch elsewhere goes first. */
        bool later = false;
        for (unsigned j = k + 1; j < WSCHED_NPRIO; j++)
            later |= ld(&me->inbox[class_order(me, j)].pending, RLX) > 0;
        if (!later || me->pool->n == 1)
            continue;
        r = take_class(me, c, me->index + 1, me, t, &from, run, &more);
        if (r == TAKE_OK)
            goto started;
        if (r == TAKE_BUSY)
            return false;
    }
    return false;
started:
    me->starts += 1 + more;
    return true;
}

int inbox_take_any(struct worker *me, unsigned start, struct task *t, bool run)
{
    for (unsigned k = 0; k < WSCHED_NPRIO; k++) {
        unsigned from, more = 0;
        enum take r = take_class(me, class_order(me, k), start, NULL, t, &from, run, &more);
        if (r == TAKE_OK) {
            me->starts += 1 + more;
            return (int)from;
        }
        if (r == TAKE_BUSY)
            return -1; /* see inbox_take_local */
    }
    return -1;
}

bool inbox_visible_sc(struct worker *w)
{
    for (unsigned c = 0; c < WSCHED_NPRIO; c++)
        if (ld(&w->inbox[c].pending, SC) > 0)
            return true;
    return false;
}

int64_t inbox_queued(struct worker *w)
{
    int64_t n = 0;
    for (unsigned c = 0; c < WSCHED_NPRIO; c++)
        n += ld(&w->inbox[c].pending, RLX);
    return n;
}
