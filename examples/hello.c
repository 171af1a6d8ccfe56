/* SPDX-License-Identifier: MIT */
/* hello: the smallest useful drover handler module, and the benchmarks' application workload: a fixed text.
 *
 *     cc -shared -fPIC $(pkg-config --cflags drover-handler) -o hello.so hello.c
 *     drover --handler=/hello=./hello.so
 */
#include <drover/handler.h>

static const char greeting[] = "Hello, world!\n";

static int hello_handle(void *state, const drover_request *req, drover_response *resp)
{
        int r = drover_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
        if (r < 0)
                return r;
        return drover_response_write(resp, greeting, sizeof greeting - 1);
}

const drover_handler drover_module = {
        .abi_version = DROVER_HANDLER_ABI_VERSION,
        .name = "hello",
        .handle = hello_handle,
};
