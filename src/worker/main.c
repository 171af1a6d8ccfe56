/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "common/options.h"
#include "config.h"
#include "worker/worker.h"

/*
 * drover-worker: a built-in worker, exec'd by the supervisor (drover) with its sockets, its slot
 * (--worker=SLOT) and every option it needs on the command line; it reads no configuration file. A separate
 * executable so that it links neither libsystemd nor libinih: every worker start is an exec, and on a
 * virtual machine the page faults of loading those libraries were a large part of a cold start (issue 7).
 */
int main(int argc, char *argv[])
{
        static OptionsErrors errors; /* large: keep it off the stack */
        static Options o;
        OptionsSource src = { .argc = argc, .argv = argv, .default_workers = 1 };
        int r;

        r = options_load(&src, &o, &errors);
        if (r == 0 && o.version) {
                puts("drover-worker " PACKAGE_VERSION);
                return 0;
        }
        if (r == 0 && (o.help || !o.worker_mode)) {
                fputs("drover-worker is started by drover, the supervisor, with its sockets and "
                      "--worker=SLOT; see drover(8)\n",
                      o.help ? stdout : stderr);
                return o.help ? 0 : EX_USAGE;
        }
        if (r < 0) {
                /* The supervisor wrote this command line: a problem means it is of another version. */
                fprintf(stderr, "drover-worker: %.*s\n", (int) strcspn(errors.text, "\n"), errors.text);
                return r == -EINVAL ? EX_USAGE : EX_CONFIG;
        }
        return worker_main(&o);
}
