# Generate a C file holding every layouts/*.layout as a string, so the text
# files in the source tree are the one source of truth for the built-in
# layouts (`airlock layout show NAME` prints exactly the file).
# Usage: cmake -DLAYOUT_DIR=<dir> -DOUTPUT=<file.c> -P embed.cmake
# The text is emitted as byte values: no escaping to get wrong, and no limit
# on string-literal length (-Wpedantic warns beyond 4095 characters).
# Runs at build time, only when a layout file or this script changed.
file(GLOB files "${LAYOUT_DIR}/*.layout")
set(names "")
foreach(f IN LISTS files)
  get_filename_component(name "${f}" NAME_WE)
  list(APPEND names "${name}")
endforeach()
list(SORT names) # by name, so "nrf52840" comes before "nrf52840-qspi"

set(out "/* Generated from the layouts/NAME.layout files by layouts/embed.cmake: do not edit. */\n")
string(APPEND out "#include \"layout_file.h\"\n\n")
set(table "")
set(i 0)
foreach(name IN LISTS names)
  file(READ "${LAYOUT_DIR}/${name}.layout" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n    " bytes "${bytes}")
  string(APPEND out "/* layouts/${name}.layout */\nstatic const unsigned char text_${i}[] = {\n    ${bytes}0x00};\n\n")
  string(APPEND table "    {\"${name}\", (const char *)text_${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND out "const struct layout_builtin layout_builtins[] = {\n${table}    {0, 0},\n};\n")

file(WRITE "${OUTPUT}" "${out}")
