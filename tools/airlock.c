/*
 * airlock: one binary, subcommands (git/imgtool shape). main only dispatches;
 * each subcommand parses its own options and returns an exit code from
 * exitcodes.h. The command table is generated from CLI_COMMANDS in cli.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

#ifndef AIRLOCK_VERSION_STRING
#define AIRLOCK_VERSION_STRING "unknown"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
#define CLI_ENTRY_(name, summary) {#name, cmd_##name, summary},
    CLI_COMMANDS(CLI_ENTRY_)
#undef CLI_ENTRY_
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: airlock COMMAND [OPTIONS] [ARGS]\n"
               "       airlock --help | --version\n"
               "\n"
               "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %-8s  %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "\n"
               "Run 'airlock COMMAND --help' for a command's options.\n"
               "Exit codes: 0 ok, 2 usage, 3 I/O, 4 key, 5 malformed image, 6 hash,\n"
               "7 signature, 8 untrusted key, 9 unsupported, 10 too big, 11 internal, 12 layout,\n"
               "13 power cut broke the device, 14 network, 15 TLS, 16 HTTP, 17 interrupted,\n"
               "18 rejected by the server, 19 operator token refused, 20 a simulated device\n"
               "bricked, 21 a report the server acknowledged is missing, 22 a simulation\n"
               "stopped before its goal (see docs/cli.md).\n");
}

int cli_bad_option(int c, char **argv)
{
    const char *arg = (optind > 0) ? argv[optind - 1] : "?";

    if (c == ':') {
        return cli_fail(EXIT_USAGE, "option '%s' needs a value (see 'airlock %s --help')", arg,
                        cli_cmd());
    }
    if (optopt != 0 && arg[0] == '-' && arg[1] != '-') {
        return cli_fail(EXIT_USAGE, "unknown option '-%c' (see 'airlock %s --help')", optopt,
                        cli_cmd());
    }
    return cli_fail(EXIT_USAGE, "unknown option '%s' (see 'airlock %s --help')", arg, cli_cmd());
}

int main(int argc, char **argv)
{
    const char *name;
    size_t i;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return EXIT_OK_;
    }
    if (strcmp(name, "--version") == 0) {
        printf("airlock %s\n", AIRLOCK_VERSION_STRING);
        return EXIT_OK_;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return EXIT_OK_;
        }
        /* "airlock help sign" == "airlock sign --help" */
        for (i = 0; i < NCOMMANDS; i++) {
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *help_argv[] = {argv[2], "--help", NULL};

                cli_set_cmd(commands[i].name);
                return commands[i].run(2, help_argv);
            }
        }
        name = argv[2];
    } else {
        for (i = 0; i < NCOMMANDS; i++) {
            if (strcmp(name, commands[i].name) == 0) {
                cli_set_cmd(commands[i].name);
                cli_install_signal_cleanup();
                opterr = 0; /* subcommands report bad options themselves */
                return commands[i].run(argc - 1, argv + 1);
            }
        }
    }
    fprintf(stderr, "airlock: error: unknown command '%s'\n\n", name);
    usage(stderr);
    return EXIT_USAGE;
}
