/*
 * The CLI's JSON output (--json): one document on stdout per command, also
 * when a command refuses before doing anything. Host tools only (jansson);
 * never prints anything but the document.
 */
#ifndef AIRLOCK_TOOLS_CLI_JSON_H
#define AIRLOCK_TOOLS_CLI_JSON_H

#include <jansson.h>

/* Print j indented (2) followed by a newline, then release it. NULL: nothing. */
void cli_json_print(json_t *j);

/* {"ok": false, "exit": code, "message": cli_last_error()}: a refusal as JSON. */
void cli_json_refusal(int code);

#endif
