#ifndef COHORT_ZMQ_SHIM_H
#define COHORT_ZMQ_SHIM_H
#include <zmq.h>
#include <errno.h>

/* Swift cannot name a C function pointer made from a closure that captures context, so the
   free function for zero-copy sends lives here: it hands the hint back to Swift's release hook. */
typedef void (*cohort_release_fn)(void *hint);
static cohort_release_fn cohort_zmq_release_hook = 0;

static inline void cohort_zmq_free(void *data, void *hint) {
    (void)data;
    if (cohort_zmq_release_hook) cohort_zmq_release_hook(hint);
}

static inline void cohort_zmq_set_release_hook(cohort_release_fn hook) { cohort_zmq_release_hook = hook; }

/* Zero-copy message over `data`; `hint` is released through the hook once libzmq is done. */
static inline int cohort_zmq_msg_init_data(zmq_msg_t *msg, void *data, size_t size, void *hint) {
    return zmq_msg_init_data(msg, data, size, cohort_zmq_free, hint);
}

static inline int cohort_errno(void) { return errno; }
#endif
