/* test_fj_private: the library's spawn and sync, called from a file built
 * with WSCHED_NO_INLINE (fj_noinline.c). */
#ifndef FJ_PRIVATE_H
#define FJ_PRIVATE_H
#include <wsched.h>
int fj_spawn_lib(wsched_ctx *ctx, wsched_task_fn fn, void *arg);
int fj_sync_lib(wsched_ctx *ctx);
#endif
