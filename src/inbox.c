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

/* TAKE_BUSY: the inbox holds a counted batch we could not take now (the
 * token is held, or a producer is between I1 and I2). */
static enum take take_from(struct inbox *q, struct task *t)
{
    if (ld(&q->pending, RLX) <= 0)
        return TAKE_NONE; /* a hint; the parking re-scan uses SC loads */
    uint32_t free_ = 0;
    if (!cas(&q->token, &free_, 1, ACQ)) /* I3 */
        return TAKE_BUSY;
    struct cds_wfcq_node *node = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);
    st(&q->token, 0, REL); /* I3 */
    if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
        return TAKE_BUSY; /* counted, not linked yet (I1..I2): later */
    int64_t before = fsub(&q->pending, 1, RLX); /* I3 */
    DEBUG_ASSERT(before > 0);
    (void)before;
    struct inbox_link *l = caa_container_of(node, struct inbox_link, node);
    tsan_acquire(l); /* I4 */
    if (l->kind == INBOX_JOB) {
        struct job_rec *j = caa_container_of(l, struct job_rec, link);
        st(&j->queued, 0, RLX); /* post.c: no longer in an inbox */
        *t = job_task(j);
        return TAKE_OK;
    }
    DEBUG_ASSERT(l->kind == INBOX_BATCH);
    struct wsched_batch *b = caa_container_of(l, struct wsched_batch, link);
    st(&b->queued, 0, RLX); /* wait.c: no longer in an inbox */
    *t = range_task(b->start_fn, b, 0, b->n); /* the whole batch as one range */
    return TAKE_OK;
}

/* The class a start looks for k-th: every 8th start background first. */
static inline unsigned class_order(const struct worker *me, unsigned k)
{
    unsigned first = (me->starts & 7) == 7 ? WSCHED_PRIO_BACKGROUND : WSCHED_PRIO_INTERACTIVE;
    return (first + k) % WSCHED_NPRIO;
}

/* Take class c from the inboxes of workers start, start+1, ... (skipping
 * `skip`): TAKE_OK with *from set, TAKE_BUSY if a class-c batch exists but
 * none could be taken now, else TAKE_NONE. */
static enum take take_class(struct worker *me, unsigned c, unsigned start,
                            const struct worker *skip, struct task *t, unsigned *from)
{
    struct pool *p = me->pool;
    enum take res = TAKE_NONE;
    for (unsigned k = 0; k < p->n; k++) {
        unsigned i = (start + k) % p->n;
        if (&p->workers[i] == skip)
            continue;
        enum take r = take_from(&p->workers[i].inbox[c], t);
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
bool inbox_take_local(struct worker *me, struct task *t)
{
    for (unsigned k = 0; k < WSCHED_NPRIO; k++) {
        unsigned c = class_order(me, k), from;
        enum take r = take_from(&me->inbox[c], t);
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
        r = take_class(me, c, me->index + 1, me, t, &from);
        if (r == TAKE_OK)
            goto started;
        if (r == TAKE_BUSY)
            return false;
    }
    return false;
started:
    me->starts++;
    return true;
}

int inbox_take_any(struct worker *me, unsigned start, struct task *t)
{
    for (unsigned k = 0; k < WSCHED_NPRIO; k++) {
        unsigned from;
        enum take r = take_class(me, class_order(me, k), start, NULL, t, &from);
        if (r == TAKE_OK) {
            me->starts++;
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
