/* SPDX-License-Identifier: MIT */
/*
 * http_target_decode_path() and http_path_normalize(). The first byte of an input bounds the output buffer
 * (0: as large as the target needs); the rest is the request target.
 */
#include "common/macro.h"
#include "fuzz.h"
#include "proto/http.h"

static void check_normalized(const char *p, size_t len)
{
        FUZZ_ASSERT(len > 0 && p[0] == '/' && p[len] == '\0' && strlen(p) == len);
        for (size_t i = 0; i < len; i++) {
                /* No empty, "." or ".." segment but a final empty one (a trailing slash). */
                if (p[i] != '/')
                        continue;
                FUZZ_ASSERT(i + 1 == len || p[i + 1] != '/');
                size_t seg = strcspn(p + i + 1, "/");
                FUZZ_ASSERT(!(seg == 1 && p[i + 1] == '.'));
                FUZZ_ASSERT(!(seg == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const char *url = (const char *) data + 1;
        size_t url_len = size - 1, out_size = data[0] ? data[0] : url_len + 2, query_off = SIZE_MAX;
        char *target = fuzz_copy(data + 1, url_len), *out = malloc(out_size);
        FUZZ_ASSERT(out);
        (void) url;

        int k = http_target_decode_path(target, url_len, out, out_size, &query_off);
        FUZZ_ASSERT(k == -EINVAL || k == -ENAMETOOLONG || k > 0);
        if (k < 0)
                FUZZ_ASSERT(query_off == SIZE_MAX);
        if (k > 0) {
                FUZZ_ASSERT((size_t) k < out_size && out[k] == '\0' && strlen(out) == (size_t) k);
                FUZZ_ASSERT(out[0] == '/');
                FUZZ_ASSERT(query_off <= url_len);
                FUZZ_ASSERT(query_off == url_len || target[query_off] == '?');
                /* Decoding never lengthens. */
                FUZZ_ASSERT((size_t) k <= MAX(url_len, (size_t) 1));

                /* Normalising: in place, never longer, and a second time changes nothing. */
                int n = http_path_normalize(out, (size_t) k);
                FUZZ_ASSERT(n == -EINVAL || (n > 0 && n <= k));
                if (n > 0) {
                        check_normalized(out, (size_t) n);
                        char *again = fuzz_copy((const uint8_t *) out, (size_t) n + 1);
                        FUZZ_ASSERT(http_path_normalize(again, (size_t) n) == n);
                        FUZZ_ASSERT(memcmp(again, out, (size_t) n + 1) == 0);
                        free(again);
                }
        }

        /* Normalising any bytes at all, not only decoded paths. */
        char *raw = malloc(url_len + 1);
        FUZZ_ASSERT(raw);
        memcpy(raw, target, url_len);
        raw[url_len] = '\0';
        int n = http_path_normalize(raw, url_len);
        FUZZ_ASSERT(n == -EINVAL || (n > 0 && (size_t) n <= url_len + 1));
        if (n > 0 && memchr(target, '\0', url_len) == NULL)
                check_normalized(raw, (size_t) n);
        free(raw);

        free(target);
        free(out);
        return 0;
}
