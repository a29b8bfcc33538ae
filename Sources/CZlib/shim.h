#ifndef COHORT_ZLIB_SHIM_H
#define COHORT_ZLIB_SHIM_H
#include <zlib.h>
#include <stdlib.h>
#include <string.h>

/* Inflates a whole gzip (or zlib) stream into a malloc'ed buffer: 0 on success, else a zlib error
   code with a message in `error` (at least 128 bytes). The caller frees *out. Kept in C so the
   z_stream pointer juggling stays on this side of the bridge. */
static inline int cohort_gunzip(const unsigned char *src, size_t srcLength, unsigned char **out,
                                size_t *outLength, char *error) {
    z_stream s;
    memset(&s, 0, sizeof s);
    int status = inflateInit2(&s, 15 + 32); /* 32: detect gzip or zlib headers */
    if (status != Z_OK) { strncpy(error, "inflateInit2 failed", 127); return status; }
    size_t capacity = srcLength * 4 + 1024, used = 0;
    unsigned char *buffer = malloc(capacity);
    if (!buffer) { inflateEnd(&s); strncpy(error, "out of memory", 127); return Z_MEM_ERROR; }
    s.next_in = (unsigned char *)src;
    s.avail_in = (uInt)(srcLength > 0xFFFFFFFFu ? 0xFFFFFFFFu : srcLength);
    do {
        if (used == capacity) {
            capacity *= 2;
            unsigned char *bigger = realloc(buffer, capacity);
            if (!bigger) { free(buffer); inflateEnd(&s); strncpy(error, "out of memory", 127); return Z_MEM_ERROR; }
            buffer = bigger;
        }
        s.next_out = buffer + used;
        s.avail_out = (uInt)((capacity - used) > 0xFFFFFFFFu ? 0xFFFFFFFFu : (capacity - used));
        status = inflate(&s, Z_NO_FLUSH);
        used = (size_t)(s.next_out - buffer);
        if (status == Z_STREAM_END) break;
        if (status == Z_BUF_ERROR && s.avail_in == 0) {
            free(buffer); inflateEnd(&s); strncpy(error, "truncated: the compressed stream ends early", 127); return Z_DATA_ERROR;
        }
        if (status != Z_OK && status != Z_BUF_ERROR) {
            strncpy(error, s.msg ? s.msg : "corrupt compressed data", 127);
            free(buffer); inflateEnd(&s); return status == Z_NEED_DICT ? Z_DATA_ERROR : status;
        }
    } while (1);
    inflateEnd(&s);
    *out = buffer;
    *outLength = used;
    return Z_OK;
}
#endif
