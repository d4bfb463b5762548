/* Process figures: see procstat.h. */
#define _GNU_SOURCE
#include "procstat.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ------------------------------------------------------- thread counting */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static _Atomic uint64_t created;
static _Atomic int64_t live;
static _Atomic int64_t peak;
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static create_fn real_create;

/* Runs at thread exit, whether the thread returned or called pthread_exit. */
static void on_exit_key(void *unused)
{
    (void)unused;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
}

static void init_once(void)
{
    real_create = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    if (pthread_key_create(&exit_key, on_exit_key) != 0)
        abort();
}

struct tramp {
    void *(*fn)(void *);
    void *arg;
};

static void *trampoline(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    int64_t now = atomic_fetch_add_explicit(&live, 1, memory_order_relaxed) + 1;
    int64_t old = atomic_load_explicit(&peak, memory_order_relaxed);
    while (now > old &&
           !atomic_compare_exchange_weak_explicit(&peak, &old, now, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    /* Any non-NULL value makes the key's destructor run at exit. */
    pthread_setspecific(exit_key, (void *)1);
    return t.fn(t.arg);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    pthread_once(&once, init_once);
    if (!real_create)
        return EAGAIN;
    struct tramp *tr = malloc(sizeof *tr);
    if (!tr)
        return EAGAIN;
    tr->fn = fn;
    tr->arg = arg;
    int rc = real_create(t, attr, trampoline, tr);
    if (rc != 0)
        free(tr);
    else
        atomic_fetch_add_explicit(&created, 1, memory_order_relaxed);
    return rc;
}

int wbp_raw_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg)
{
    pthread_once(&once, init_once);
    return real_create ? real_create(t, attr, fn, arg) : EAGAIN;
}

uint64_t wbp_threads_created(void) { return atomic_load_explicit(&created, memory_order_relaxed); }
int64_t wbp_threads_live(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
int64_t wbp_threads_peak(void) { return atomic_load_explicit(&peak, memory_order_relaxed); }
void wbp_threads_peak_reset(void)
{
    atomic_store_explicit(&peak, atomic_load_explicit(&live, memory_order_relaxed),
                          memory_order_relaxed);
}

/* ------------------------------------------------------------------ RSS */

int wbp_rss_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return 0;
    int ok = fputs("5", f) >= 0;
    ok &= fclose(f) == 0;
    return ok;
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t n = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

long wbp_rss_peak_kb(void)
{
    long kb = status_kb("VmHWM");
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

long wbp_rss_now_kb(void) { return status_kb("VmRSS"); }

const char *wbp_malloc_name(void)
{
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (m && dladdr(m, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        return slash ? slash + 1 : info.dli_fname;
    }
    return "unknown";
}
