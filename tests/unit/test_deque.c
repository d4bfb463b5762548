/* Chase-Lev deque, single-threaded: LIFO for the owner, FIFO for thieves,
 * growth keeps every element, empty behaviour. */
#include "check.h"
#include "deque.h"

static struct task mk(uintptr_t v) { return (struct task){NULL, v, v + 1, v + 2}; }

int main(void)
{
    struct mem mem;
    mem_init(&mem, NULL);
    struct deque d;
    CHECK_OK(deque_init(&d, &mem, 4));
    struct task t;
    bool was_empty;

    CHECK(!deque_pop_owner(&d, &t));
    CHECK_EQ(deque_steal(&d, &t), STEAL_EMPTY);

    /* LIFO pops. */
    for (uintptr_t i = 0; i < 3; i++) {
        struct task x = mk(i);
        CHECK_OK(deque_push_owner(&d, &x, &was_empty));
        CHECK_EQ(was_empty, i == 0);
    }
    for (uintptr_t i = 3; i-- > 0;) {
        CHECK(deque_pop_owner(&d, &t));
        CHECK_EQ(t.a, i);
        CHECK_EQ(t.c, i + 2);
    }
    CHECK(!deque_pop_owner(&d, &t));

    /* FIFO steals, across several growths (4 -> 4096). */
    for (uintptr_t i = 0; i < 4000; i++) {
        struct task x = mk(i);
        CHECK_OK(deque_push_owner(&d, &x, &was_empty));
    }
    CHECK_EQ(ld(&d.array, RLX)->mask + 1, 4096);
    for (uintptr_t i = 0; i < 2000; i++) {
        CHECK_EQ(deque_steal(&d, &t), STEAL_OK);
        CHECK_EQ(t.a, i);
    }
    /* Owner takes the rest from the other end, down to the last element. */
    for (uintptr_t i = 4000; i-- > 2000;) {
        CHECK(deque_pop_owner(&d, &t));
        CHECK_EQ(t.a, i);
    }
    CHECK(!deque_pop_owner(&d, &t));
    CHECK_EQ(deque_steal(&d, &t), STEAL_EMPTY);
    CHECK(deque_empty_hint(&d));

    /* Wrap-around: push/steal many more than the capacity. */
    for (uintptr_t i = 0; i < 100000; i++) {
        struct task x = mk(i);
        CHECK_OK(deque_push_owner(&d, &x, &was_empty));
        CHECK_EQ(deque_steal(&d, &t), STEAL_OK);
        CHECK_EQ(t.a, i);
    }
    CHECK_EQ(ld(&d.array, RLX)->mask + 1, 4096); /* no growth needed */

    deque_fini(&d);
    printf("test_deque: ok\n");
    return 0;
}
