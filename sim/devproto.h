/*
 * The contract between the device simulator (sim/device.c) and the firmware
 * it runs (examples/firmware), documented in docs/simulator.md: the
 * environment the firmware gets, its exit codes, the event lines it prints
 * and the settings keys the device's identity lives under. Only constants:
 * both sides include this and nothing else of each other.
 */
#ifndef AIRLOCK_SIM_DEVPROTO_H
#define AIRLOCK_SIM_DEVPROTO_H

/* Environment of the firmware process. */
#define DEV_ENV_FLASH "AIRLOCK_DEV_FLASH"             /* path of the flash file */
#define DEV_ENV_LAYOUT "AIRLOCK_DEV_LAYOUT"           /* layout file or built-in name */
#define DEV_ENV_WATCHDOG_FD "AIRLOCK_DEV_WATCHDOG_FD" /* write a byte to feed the watchdog */
#define DEV_ENV_BOOT "AIRLOCK_DEV_BOOT"               /* boot count, 1 for the first */
#define DEV_ENV_CUT_AT "AIRLOCK_DEV_CUT_AT"           /* cut power in flash operation K */
#define DEV_ENV_SEED "AIRLOCK_DEV_SEED"               /* seed for the cut's tear */
#define DEV_ENV_TIME_SCALE "AIRLOCK_DEV_TIME_SCALE"   /* poll sleeps divided by it */

/* Exit codes of the firmware process. */
#define DEV_EXIT_HALT 0      /* halted on request (SIGTERM) */
#define DEV_EXIT_REBOOT 10   /* reboot requested (an update is pending, or a failed trial) */
#define DEV_EXIT_POWERCUT 11 /* a flash operation was cut (AIRLOCK_DEV_CUT_AT) */
#define DEV_EXIT_CONFIG 12   /* not provisioned / cannot start: the sim stops */
/* anything else, or a signal: a crash (the sim reboots the device) */

/* Event lines on the firmware's stdout: "@ev NAME key=value ..." */
#define DEV_EVENT_PREFIX "@ev "

/* Settings keys (include/airlock/settings.h) of a provisioned device. */
#define DEV_KEY_SERVER "server"         /* base URL "https://host:port" */
#define DEV_KEY_TENANT "tenant"         /* "DEFAULT" */
#define DEV_KEY_CONTROLLER "controller" /* controller id */
#define DEV_KEY_AUTH "auth"             /* "TargetToken X" or "GatewayToken X" */
#define DEV_KEY_CA "ca"                 /* CA certificate(s), PEM */
#define DEV_KEY_DDI "ddi"               /* the DDI persist record (AIRLOCK_DDI_PERSIST_LEN bytes) */

#endif
