/*
 * liburcu, QSBR flavour. Release builds define _LGPL_SOURCE (inlined fast
 * paths); sanitizer builds do not (UBSan flags liburcu's inline headers and
 * TSan cannot see their inline-asm atomics), see CMakeLists.txt.
 */
#ifndef WSCHED_RCU_H
#define WSCHED_RCU_H

#include <urcu/urcu-qsbr.h>
#include <urcu/wfcqueue.h>

#endif
