/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/options.h"
#include "config.h"
#include "supervisor/supervisor.h"

static void print_problems(const OptionsErrors *errors)
{
        const char *p = errors->text;
        while (*p) {
                size_t n = strcspn(p, "\n");
                fprintf(stderr, "drover: %.*s\n", (int) n, p);
                p += n + (p[n] == '\n');
        }
        if (errors->truncated)
                fputs("drover: ... and more problems\n", stderr);
}

static void options_freep(Options **o)
{
        if (*o) {
                options_done(*o);
                free(*o);
        }
}

int main(int argc, char *argv[])
{
        static OptionsErrors errors; /* large: keep it off the stack */
        /* The supervisor re-reads the same source on SIGHUP: it must live as long as the process. */
        static OptionsSource src;
        _cleanup_(options_freep) Options *o = NULL;
        int r;

        src = (OptionsSource){
                .argc = argc,
                .argv = argv,
                .default_workers = 0, /* the online CPUs, if no workers option says otherwise */
                .default_config = DROVER_CONFIG_FILE,
        };
        o = calloc(1, sizeof *o); /* large, and the supervisor takes it over */
        if (!o) {
                fputs("drover: out of memory\n", stderr);
                return EX_OSERR;
        }
        r = options_load(&src, o, &errors);
        if (r == -EINVAL) {
                print_problems(&errors);
                fputs(options_usage, stderr);
                return EX_USAGE;
        }
        if (r == 0 && o->help) {
                fputs(options_usage, stdout);
                return 0;
        }
        if (r == 0 && o->version) {
                puts("drover " PACKAGE_VERSION);
                return 0;
        }
        if (o->check_config) {
                /* Like nginx -t: everything that can be checked without serving, every problem listed. */
                (void) supervisor_check(o, &errors);
                if (errors.n > 0) {
                        print_problems(&errors);
                        return EX_CONFIG;
                }
                puts("ok");
                return 0;
        }
        if (r < 0) {
                print_problems(&errors);
                return EX_CONFIG;
        }
        if (o->worker_mode) {
                /* Built-in workers are a program of their own, drover-worker (no libsystemd to load). */
                fputs("drover: option '--worker' is internal to drover-worker, which drover starts itself\n",
                      stderr);
                return EX_USAGE;
        }
        return supervisor_main(TAKE_PTR(o), &src);
}
