/*
 * The request fan-out scenario of fanout.c, written the way a C++ service
 * would use wsched (include/wsched.hpp): 50 client threads each handle 20
 * requests; a request fans out 10-20 independent lookups and needs all
 * their results, in input order, before it answers. Some lookups fail
 * (-ECONNREFUSED, reported per job as an error code, not an exception); a
 * failure does not stop the others. One fixed pool serves every request:
 * no thread per job, no shared mutex.
 */
#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "wsched.hpp"

namespace {

struct query {
    int id;
};

struct response {
    int query_id;
    std::string result;
};

/* The side job: a "lookup" that fails for some ids, like a flaky HTTP
 * call. Status-returning form: a response, or the error of this lookup. */
wsched::result<response> lookup(const query &q)
{
    if (q.id % 13 == 0)
        return wsched::make_error_code(-ECONNREFUSED);
    unsigned h = static_cast<unsigned>(q.id) * 2654435761u;
    for (int k = 0; k < 200; k++) /* a little CPU work */
        h = h * 1103515245u + 12345u;
    char buf[24];
    std::snprintf(buf, sizeof buf, "ok:%08x", h);
    return response{q.id, buf};
}

struct tally {
    long ok = 0, failed = 0;
};

/* One request: fan out, wait for all, read results in input order. Returns
 * false on a result that contradicts the plan. */
bool handle_request(wsched::pool &pool, int request, tally &t)
{
    std::vector<query> queries(static_cast<std::size_t>(10 + request % 11));
    for (std::size_t i = 0; i < queries.size(); i++)
        queries[i].id = request * 100 + static_cast<int>(i);

    // The lambda refers to `queries`, which outlives the batch (declared
    // after it): the batch's destructor waits for every job.
    auto batch = pool.submit(queries.size(), [&queries](std::size_t i) { return lookup(queries[i]); });
    batch.wait(); // complete: how each job ended is its status

    for (std::size_t i = 0; i < batch.size(); i++) {
        if (const response *r = batch.get(i); r && r->query_id == queries[i].id &&
                                              r->result.compare(0, 3, "ok:") == 0) {
            t.ok++;
        } else if (batch.error(i) == std::errc::connection_refused && queries[i].id % 13 == 0) {
            t.failed++; /* expected failure, reported per job */
        } else {
            std::fprintf(stderr, "request %d job %zu: unexpected %s\n", request, i,
                         batch.error(i).message().c_str());
            return false;
        }
    }
    return true;
}

} // namespace

int main()
{
    constexpr int clients = 50, per_client = 20; /* 1,000 requests at once */
    long ok = 0, failed = 0;
    try {
        wsched::pool pool; /* one worker per CPU */
        std::vector<tally> tallies(clients);
        std::vector<char> good(clients, 1);
        std::vector<std::thread> threads;
        threads.reserve(clients);
        for (int c = 0; c < clients; c++)
            threads.emplace_back([&, c] {
                std::size_t me = static_cast<std::size_t>(c);
                try {
                    for (int k = 0; k < per_client && good[me]; k++)
                        good[me] = handle_request(pool, c * per_client + k, tallies[me]);
                } catch (const wsched::error &e) { /* submit refused */
                    std::fprintf(stderr, "client %d: %s: %s\n", c, e.what(), e.code().message().c_str());
                    good[me] = 0;
                }
            });
        for (std::thread &th : threads)
            th.join();
        for (int c = 0; c < clients; c++) {
            if (!good[static_cast<std::size_t>(c)])
                return 1;
            ok += tallies[static_cast<std::size_t>(c)].ok;
            failed += tallies[static_cast<std::size_t>(c)].failed;
        }
    } catch (const wsched::error &e) { /* the pool could not start */
        std::fprintf(stderr, "fanout: %s: %s\n", e.what(), e.code().message().c_str());
        return 1;
    }

    long expected_total = 0, expected_failed = 0;
    for (int req = 0; req < clients * per_client; req++)
        for (int i = 0; i < 10 + req % 11; i++) {
            expected_total++;
            expected_failed += (req * 100 + i) % 13 == 0;
        }
    std::printf("fanout (C++): %d requests, %ld jobs ok, %ld failed (as injected)\n",
                clients * per_client, ok, failed);
    return ok + failed == expected_total && failed == expected_failed ? 0 : 1;
}
