/* test_fj_private's other half: the same header without the inline fast
 * path, as a program built with -DWSCHED_NO_INLINE (or an older build of
 * a plugin) would call wsched_spawn and wsched_sync. */
#define WSCHED_NO_INLINE
#include <wsched.h>

#include "fj_private.h"

int fj_spawn_lib(wsched_ctx *ctx, wsched_task_fn fn, void *arg) { return wsched_spawn(ctx, fn, arg); }

int fj_sync_lib(wsched_ctx *ctx) { return wsched_sync(ctx); }
