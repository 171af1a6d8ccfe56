/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/options.h"
#include "config.h"
#include "supervisor/supervisor.h"
#include "worker/worker.h"

int main(int argc, char *argv[])
{
        static Options o; /* large: keep it off the stack */
        char err[512];
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int r;

        r = options_parse(argc, argv, (unsigned) (cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX : cpus), &o,
                          err, sizeof err);
        if (r == -EINVAL) {
                fprintf(stderr, "drover: %s\n%s", err, options_usage);
                return EX_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "drover: %s\n", err);
                return EX_CONFIG;
        }
        if (o.help) {
                fputs(options_usage, stdout);
                return 0;
        }
        if (o.version) {
                puts("drover " PACKAGE_VERSION);
                return 0;
        }
        return o.worker_mode ? worker_main(&o) : supervisor_main(&o);
}
