#include "cfutex.h"
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Not FUTEX_PRIVATE_FLAG: the word is in memory other processes map.
void cohort_futex_wait(uint32_t *word, uint32_t expected, long timeout_ns) {
    struct timespec timeout = { timeout_ns / 1000000000L, timeout_ns % 1000000000L };
    syscall(SYS_futex, word, FUTEX_WAIT, expected, &timeout, NULL, 0);
}

void cohort_futex_wake(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
