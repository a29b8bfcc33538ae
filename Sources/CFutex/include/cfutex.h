// Futex waits and wakes on a 32-bit word in shared memory, and the atomic loads and stores
// around it: the doorbells of the shared-memory mailboxes between the coordinator and the
// workers on its machine (CohortCluster/LocalMailbox.swift). syscall() is variadic, which Swift
// cannot call, hence these few lines of C.
#ifndef COHORT_CFUTEX_H
#define COHORT_CFUTEX_H
#include <stdint.h>

static inline uint32_t cohort_load_acquire(const uint32_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
static inline void cohort_store_release(uint32_t *word, uint32_t value) { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
static inline uint32_t cohort_add(uint32_t *word, uint32_t value) { return __atomic_add_fetch(word, value, __ATOMIC_ACQ_REL); }

/// Sleeps while *word == expected, for at most timeout_ns (returns at once if it differs).
void cohort_futex_wait(uint32_t *word, uint32_t expected, long timeout_ns);
/// Wakes every process sleeping on *word.
void cohort_futex_wake(uint32_t *word);
#endif
