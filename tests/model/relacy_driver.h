/*
 * The driver shared by the Relacy models (deque_relacy.cpp,
 * completion_relacy.cpp, admission_relacy.cpp; included by the model's
 * translation unit only, not by the one with the code under test): the
 * command line, the search of each entry of the model's runs[] table, the
 * loop over that table and its RESULT lines, which run_relacy.sh reads.
 *
 * Usage of every model: MODEL [--mutant] [--only NAME] [--sched full|bound:K|random:N]
 *   default   every entry of runs[]; exit status 1 if any fails
 *   --mutant  the smaller bounds/iteration counts (mutant_n; entries whose
 *             mutant_n is 0 are not run), stop at the first failure
 *   --only    the entries of one configuration (by name)
 *   --sched   one run per configuration (its first entry) with this search
 *             instead (for experiments)
 * Anything else: a usage line on stderr, exit status 2.
 *
 * A model supplies its runs[] (run<config>, config having a `name`), and to
 * drive(): the width of the name field in the RESULT line; a function
 *   bool simulate(const run<config> &r, bool mutant, unsigned long &iters)
 * that resets the model's globals for r and calls simulate<Model<NT>>(r,
 * mutant, iters) below with the thread count r needs; and two that print
 * the model's parts of the RESULT line:
 *   RESULT <name> <search> <describe(cfg)> iterations=I time=Ts PASS|FAIL  <tail()>
 * (describe: the configuration's fields; tail: the bracketed coverage
 * counts of the last simulation).
 */
#ifndef WSCHED_MODEL_RELACY_DRIVER_H
#define WSCHED_MODEL_RELACY_DRIVER_H

#include "relacy_model.h"

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace relacy_driver {

template <class Config>
struct run {
    Config cfg;
    rl::scheduler_type_e sched;
    unsigned long n;        /* bound: context bound; random: iterations;
                             * full: unused (not 0) */
    unsigned long mutant_n; /* the same with --mutant; 0: not run then */
};

struct options {
    bool mutant = false;
    const char *only = nullptr;
    const char *sched = nullptr; /* full | bound:K | random:N, for experiments */
};

/* false (after the usage line) on anything it does not know */
inline bool parse_args(int argc, char **argv, options &o)
{
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--mutant") == 0)
            o.mutant = true;
        else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            o.only = argv[++i];
        else if (std::strcmp(argv[i], "--sched") == 0 && i + 1 < argc)
            o.sched = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--mutant] [--only NAME] [--sched S]\n", argv[0]);
            return false;
        }
    }
    return true;
}

/* --sched: r's search replaced by the one named (an unknown name leaves
 * r as it is) */
template <class Config>
void apply_sched(run<Config> &r, const char *sched)
{
    if (std::strcmp(sched, "full") == 0)
        r.sched = rl::sched_full;
    else if (std::strncmp(sched, "bound:", 6) == 0)
        r.sched = rl::sched_bound, r.n = r.mutant_n = std::strtoul(sched + 6, nullptr, 10);
    else if (std::strncmp(sched, "random:", 7) == 0)
        r.sched = rl::sched_random, r.n = r.mutant_n = std::strtoul(sched + 7, nullptr, 10);
}

/* One search of Model (a test_suite) as r says; iters: the executions it
 * explored. Relacy's progress output is discarded, its failure report goes
 * to stdout. */
template <class Model, class Config>
bool simulate(const run<Config> &r, bool mutant, unsigned long &iters)
{
    rl::test_params p;
    std::ostringstream progress;
    p.progress_stream = &progress;
    p.search_type = r.sched;
    unsigned long n = mutant ? r.mutant_n : r.n;
    if (r.sched == rl::sched_random)
        p.iteration_count = n;
    else if (r.sched == rl::sched_bound)
        p.context_bound = (unsigned)n;
    bool ok = rl::simulate<Model>(p);
    iters = p.stop_iteration;
    return ok;
}

/* The loop over runs[] (see the top comment); returns main's exit status. */
template <class Config, std::size_t N, class Simulate, class Describe, class Tail>
int run_all(const run<Config> (&runs)[N], const options &o, int name_width,
            Simulate simulate_run, Describe describe, Tail tail)
{
    int failed = 0;
    const char *prev = "";
    for (run<Config> r : runs) {
        bool same = std::strcmp(prev, r.cfg.name) == 0;
        prev = r.cfg.name;
        if (o.sched) {
            if (same)
                continue; /* one run per configuration */
            apply_sched(r, o.sched);
        }
        if (o.only && std::strcmp(o.only, r.cfg.name) != 0)
            continue;
        if (o.mutant && r.mutant_n == 0)
            continue;
        auto t0 = std::chrono::steady_clock::now();
        unsigned long iters = 0;
        bool ok = simulate_run(r, o.mutant, iters);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        char how[32];
        unsigned long n = o.mutant ? r.mutant_n : r.n;
        if (r.sched == rl::sched_full)
            std::snprintf(how, sizeof how, "full");
        else if (r.sched == rl::sched_bound)
            std::snprintf(how, sizeof how, "bound:%lu", n);
        else
            std::snprintf(how, sizeof how, "random");
        std::printf("RESULT %-*s %-8s ", name_width, r.cfg.name, how);
        describe(r.cfg);
        std::printf(" iterations=%lu time=%.2fs %s  ", iters, s, ok ? "PASS" : "FAIL");
        tail();
        std::printf("\n");
        std::fflush(stdout);
        if (!ok) {
            failed++;
            if (o.mutant)
                break;
        }
    }
    return failed ? 1 : 0;
}

/* main() of a model: parse_args, then run_all */
template <class Config, std::size_t N, class Simulate, class Describe, class Tail>
int drive(int argc, char **argv, const run<Config> (&runs)[N], int name_width,
          Simulate simulate_run, Describe describe, Tail tail)
{
    options o;
    if (!parse_args(argc, argv, o))
        return 2;
    return run_all(runs, o, name_width, simulate_run, describe, tail);
}

} // namespace relacy_driver

#endif
