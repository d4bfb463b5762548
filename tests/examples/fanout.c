/*
 * The request fan-out scenario (shared/seeds/000): many requests arrive at
 * once; each fans out 10-20 independent side jobs (lookups) and needs all
 * their results, in input order, before it answers. Some lookups fail; a
 * failure does not stop the others, and the caller sees exactly which job
 * failed and why. A fixed pool serves all requests: no thread per job, no
 * shared mutex, no unbounded memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsched.h"

struct query {
    int id;
};

struct response {
    int query_id;
    char result[24];
};

/* The side job: a "lookup" that fails for some ids, like a flaky HTTP call. */
static int lookup(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx;
    const struct query *q = &((const struct query *)arg)[i];
    struct response *out = slot; /* slot i: ours alone, no lock needed */
    if (q->id % 13 == 0)
        return -ECONNREFUSED;
    unsigned h = (unsigned)q->id * 2654435761u;
    for (int k = 0; k < 200; k++) /* a little CPU work */
        h = h * 1103515245u + 12345u;
    out->query_id = q->id;
    snprintf(out->result, sizeof out->result, "ok:%08x", h);
    return 0;
}

struct client {
    wsched_pool *pool;
    int first_request, nrequests;
    long ok, failed;
};

/* One request: fan out, wait for all, read results in input order. */
static int handle_request(wsched_pool *pool, int request, long *ok, long *failed)
{
    int njobs = 10 + request % 11;
    struct query queries[20];
    for (int i = 0; i < njobs; i++)
        queries[i].id = request * 100 + i;

    wsched_batch_desc d = {.fn = lookup, .arg = queries, .njobs = (size_t)njobs,
                           .slot_size = sizeof(struct response)};
    wsched_batch *batch;
    int r = wsched_submit(pool, &d, &batch);
    if (r)
        return r;
    r = wsched_wait(batch, -1);
    if (r) {
        wsched_batch_free(batch);
        return r;
    }
    for (int i = 0; i < njobs; i++) {
        int status;
        wsched_batch_status(batch, (size_t)i, &status); /* i < njobs: cannot fail */
        const struct response *resp = wsched_batch_slot(batch, (size_t)i);
        if (status == 0 && resp->query_id == queries[i].id) {
            (*ok)++;
        } else if (status == -ECONNREFUSED && queries[i].id % 13 == 0) {
            (*failed)++; /* expected failure, reported per job */
        } else {
            fprintf(stderr, "request %d job %d: unexpected %s\n", request, i,
                    wsched_strerror(status));
            wsched_batch_free(batch);
            return -EPROTO;
        }
    }
    wsched_batch_free(batch);
    return 0;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int k = 0; k < c->nrequests; k++)
        if (handle_request(c->pool, c->first_request + k, &c->ok, &c->failed) != 0)
            exit(1);
    return NULL;
}

int main(void)
{
    wsched_pool *pool;
    int r = wsched_pool_create(&pool, NULL); /* one worker per CPU */
    if (r) {
        fprintf(stderr, "pool: %s\n", wsched_strerror(r));
        return 1;
    }
    enum { CLIENTS = 50, PER_CLIENT = 20 }; /* 1,000 requests at once */
    pthread_t th[CLIENTS];
    struct client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){pool, i * PER_CLIENT, PER_CLIENT, 0, 0};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    long ok = 0, failed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok;
        failed += cl[i].failed;
    }
    wsched_pool_destroy(pool);

    long expected_total = 0, expected_failed = 0;
    for (int req = 0; req < CLIENTS * PER_CLIENT; req++)
        for (int i = 0; i < 10 + req % 11; i++) {
            expected_total++;
            expected_failed += (req * 100 + i) % 13 == 0;
        }
    printf("fanout: %d requests, %ld jobs ok, %ld failed (as injected)\n",
           CLIENTS * PER_CLIENT, ok, failed);
    return ok + failed == expected_total && failed == expected_failed ? 0 : 1;
}
