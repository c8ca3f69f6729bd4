/*
 * Exit codes of the airlock CLI, one per error class (documented in
 * docs/cli.md). Scripts rely on these values: never renumber.
 */
#ifndef AIRLOCK_TOOLS_EXITCODES_H
#define AIRLOCK_TOOLS_EXITCODES_H

enum airlock_exit {
    EXIT_OK_ = 0,
    EXIT_USAGE = 2,       /* bad option, missing or invalid argument */
    EXIT_IO = 3,          /* a file cannot be read or written */
    EXIT_KEY = 4,         /* key cannot be loaded, wrong type, public-only for signing */
    EXIT_MALFORMED = 5,   /* image structure: magic, header size, bounds, TLV layout */
    EXIT_HASH = 6,        /* hash TLV missing or digest mismatch */
    EXIT_SIGNATURE = 7,   /* no signature, or no signature verifies */
    EXIT_UNTRUSTED = 8,   /* signed by a key not trusted / key type mismatch */
    EXIT_UNSUPPORTED = 9, /* algorithm or flag not supported */
    EXIT_TOO_BIG = 10,    /* image (+ trailer) does not fit the slot */
    EXIT_INTERNAL = 11,   /* crypto library or internal failure */
    EXIT_LAYOUT = 12,     /* flash layout file invalid (tools/layout_file.h) */
    EXIT_POWERCUT = 13,   /* `powercut`: a power cut left the simulated device broken */
    EXIT_NETWORK = 14,    /* download failed after every retry (connection, timeouts) */
    EXIT_TLS = 15,        /* server certificate rejected: CA chain, host name, dates, pin */
    EXIT_HTTP = 16,       /* server answered with an error status (404, 403, ...) */
    EXIT_CANCELLED = 17,  /* interrupted (SIGINT/SIGTERM); the download can be resumed */

    /* operator CLI (artifact, device, group, campaign) */
    EXIT_SERVER_REJECTED = 18, /* request refused (4xx): invalid, not found, conflict, rejected */
    EXIT_UNAUTHORIZED = 19,    /* the server refused the operator token (401/403) */

    /* `sim fleet` */
    EXIT_FLEET_BRICKED = 20,     /* a simulated device has no bootable verified image */
    EXIT_FLEET_LOST_REPORT = 21, /* a report the server acknowledged is missing on it */

    /* `sim device` (a bricked device exits EXIT_FLEET_BRICKED too) */
    EXIT_SIM_UNFINISHED = 22, /* --timeout / --max-boots came before --until-version/--until-idle */
};

/* Exit code for a library error (enum airlock_err). */
int airlock_exit_for_err(int err);

#endif
