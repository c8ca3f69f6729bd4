/*
 * The CLI's JSON output helpers (cli_json.h). Stdout only; a document that
 * cannot be built (out of memory) prints nothing rather than half of it.
 */
#include "cli_json.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void cli_json_print(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(j);
}

void cli_json_refusal(int code)
{
    cli_json_print(json_pack("{s:b, s:i, s:s}", "ok", 0, "exit", code, "message", cli_last_error()));
}
