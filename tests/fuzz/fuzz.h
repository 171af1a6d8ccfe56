/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared by the libFuzzer targets. A broken invariant aborts: libFuzzer reports it as a crash with the input. */

#define FUZZ_ASSERT(x)                                                                                          \
        do {                                                                                                    \
                if (!(x)) {                                                                                     \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #x);               \
                        abort();                                                                                \
                }                                                                                               \
        } while (0)

/* A small deterministic generator (xorshift32), so that an input always splits the same way. */
static inline uint32_t fuzz_rand(uint32_t *s)
{
        uint32_t x = *s ? *s : 0x9e3779b9U;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *s = x;
}

/* A heap copy of exactly len bytes: ASan then sees any read past what the parser was given, and freeing it
 * right after feeding catches a parser that keeps pointers into the caller's buffer. */
static inline char *fuzz_copy(const uint8_t *data, size_t len)
{
        char *p = malloc(len ? len : 1);
        FUZZ_ASSERT(p);
        if (len > 0)
                memcpy(p, data, len);
        return p;
}

/* FNV-1a, to compare bodies between two runs without keeping them. */
static inline uint64_t fuzz_hash(const void *p, size_t len)
{
        const unsigned char *b = p;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++)
                h = (h ^ b[i]) * 0x100000001b3ULL;
        return h;
}
