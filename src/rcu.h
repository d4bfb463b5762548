/*
 * liburcu: wsched uses its wait-free concurrent queue (wfcqueue) for the
 * per-worker inboxes. Release builds define _LGPL_SOURCE (inlined fast
 * paths); sanitizer builds do not (UBSan flags liburcu's inline headers and
 * TSan cannot see their inline-asm atomics), see CMakeLists.txt.
 * (Deque arrays need no RCU grace period: deque.h R1.)
 */
#ifndef WSCHED_RCU_H
#define WSCHED_RCU_H

#include <urcu/wfcqueue.h>

#endif
