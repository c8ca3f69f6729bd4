/*
 * `airlock sim device` and `airlock sim fleet`: the two simulators behind
 * `airlock sim` (tools/sim_cmd.c dispatches). Each takes argv with argv[0]
 * the subcommand's name ("device", "fleet") and returns an exit code from
 * exitcodes.h.
 */
#ifndef AIRLOCK_TOOLS_SIM_H
#define AIRLOCK_TOOLS_SIM_H

int sim_device_main(int argc, char **argv); /* tools/sim_device_cmd.c */
int sim_fleet_main(int argc, char **argv);  /* tools/sim_fleet_cmd.c */

#endif
