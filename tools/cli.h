/*
 * The airlock CLI's subcommands. Each is int cmd_NAME(int argc, char **argv)
 * (argv[0] is the subcommand name) returning an exit code from exitcodes.h.
 * Adding a subcommand is one X() line here plus its .c file in CMakeLists.txt.
 */
#ifndef AIRLOCK_TOOLS_CLI_H
#define AIRLOCK_TOOLS_CLI_H

/* X(name, one-line summary), in the order `airlock --help` lists them. */
#define CLI_COMMANDS(X)                                                                            \
    X(keygen, "generate a signing key (PKCS#8 PEM)")                                               \
    X(getpub, "print a public key (C array, PEM, raw DER) or its KEYHASH")                         \
    X(sign, "make a signed MCUboot-format image (imgtool sign options)")                           \
    X(verify, "check an image's hash and signature against trusted keys")                          \
    X(dump, "show an image's header, TLVs, hash, signer and trailer")                              \
    X(layout, "check, show and list flash layouts (check|show|list)")                              \
    X(powercut, "prove an update survives a power cut at every flash operation")                   \
    X(fetch, "download an update over HTTPS into a simulated device's secondary slot")             \
    X(server, "set up (init) and run the update server (device API, operator API)")                \
    X(artifact, "upload, list and show the server's artifacts (verified on upload)")               \
    X(device, "register, list and show the server's devices")                                      \
    X(group, "create device groups, add devices to them, list and show them")                      \
    X(campaign, "roll out an artifact in waves: create, pause, resume, cancel, status")            \
    X(sim, "simulate a device (bootloader + firmware on a flash file) or a fleet (device|fleet)")

#define CLI_DECLARE_(name, summary) int cmd_##name(int argc, char **argv);
CLI_COMMANDS(CLI_DECLARE_)
#undef CLI_DECLARE_

/*
 * Report a getopt_long failure (c is '?' or ':') for argv, with a pointer to
 * `airlock CMD --help`. Returns EXIT_USAGE.
 */
int cli_bad_option(int c, char **argv);

#endif
