/*
 * `airlock sim device|fleet`: dispatch to the device simulator (one device:
 * bootloader core + firmware process on a flash file) or the fleet
 * simulator (many lightweight devices in one process). Nothing else here.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "exitcodes.h"
#include "sim.h"

static void usage(FILE *f)
{
    fputs("usage: airlock sim device --flash DEV.img --layout L [options]   one simulated device\n"
          "       airlock sim fleet -n N --server URL [options]              N devices in one "
          "process\n"
          "`airlock sim device --help` and `airlock sim fleet --help` list the options.\n",
          f);
}

int cmd_sim(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK_;
    }
    if (strcmp(argv[1], "device") == 0) {
        return sim_device_main(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "fleet") == 0) {
        return sim_fleet_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "airlock sim: unknown simulator '%s' (device or fleet)\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
