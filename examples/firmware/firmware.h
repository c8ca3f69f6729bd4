/*
 * The demo firmware's state, shared by its start-up (firmware.c) and its
 * update agent (agent.c). One instance (fw), a process per boot; nothing
 * here survives a reboot except what is written to flash.
 */
#ifndef AIRLOCK_FIRMWARE_H
#define AIRLOCK_FIRMWARE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "airlock/ota.h"
#include "airlock/settings.h"
#include "bootrom.h"
#include "devflash.h"

enum { FW_GOOD = 0, FW_CRASH = 1, FW_HANG = 2, FW_NOCONN = 3 };

typedef struct fw {
    int variant;
    const char *variant_name;
    devflash_t *dev;
    bootrom_t rom;
    airlock_boot_cfg_t cfg;
    uint8_t work[4096];
    airlock_settings_t st;
    airlock_ota_status_t status; /* at boot, updated by confirm */
    char version[32];            /* running version */
    char *server, *tenant, *controller, *auth, *ca_pem;
    char url[512];    /* server base URL as this variant reaches it */
    char ca_file[64]; /* the CA as a file for libcurl, "" if none */
    char health_msg[400];
    int wd_fd;
    unsigned boot;
    double time_scale;
    uint64_t cut_at;
    bool hung;
    volatile sig_atomic_t stop;
} fw_t;

extern fw_t fw;

/* A line for humans, and an event line for the simulator ("@ev ..."). */
void fw_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fw_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Feed the watchdog (write a byte to AIRLOCK_DEV_WATCHDOG_FD). */
void fw_feed(void);

/* Sleep ms real milliseconds feeding the watchdog; false if told to stop. */
bool fw_sleep_ms(uint32_t ms);

/* A device-time delay in real milliseconds (divided by AIRLOCK_DEV_TIME_SCALE). */
uint32_t fw_scaled(uint32_t ms);


/*
 * The update agent, after the health checks: poll the server over DDI,
 * download and stage updates, report outcomes. Returns the exit code
 * (DEV_EXIT_REBOOT after staging an update, DEV_EXIT_HALT when stopped).
 */
int fw_agent(void);

#endif
