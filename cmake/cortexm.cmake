# Cortex-M cross configuration (included by the top-level CMakeLists.txt when
# cross compiling with cmake/arm-none-eabi.cmake). Builds only what runs on a
# device: core/ (every core/*.c, -Wconversion), the mbedTLS crypto backend and
# the mbedTLS sources it needs, with cmake/cortexm/mbedtls_config.h.
# Never used for host builds; scripts/check-freestanding.sh inspects the output.

set(AIRLOCK_MBEDTLS_SRC "" CACHE PATH
    "Unpacked mbedTLS 2.28 source tree (scripts/deps.sh --print-mbedtls-dir)")
if(NOT EXISTS "${AIRLOCK_MBEDTLS_SRC}/library/ecdsa.c")
  message(FATAL_ERROR "AIRLOCK_MBEDTLS_SRC='${AIRLOCK_MBEDTLS_SRC}' is not an mbedTLS source "
                      "tree; run scripts/deps.sh and pass -DAIRLOCK_MBEDTLS_SRC=$(scripts/deps.sh --print-mbedtls-dir)")
endif()

set(AIRLOCK_MBEDTLS_CONFIG "${CMAKE_SOURCE_DIR}/cmake/cortexm/mbedtls_config.h")
set(AIRLOCK_CM3_WARNINGS -Wall -Wextra -Werror -Wpedantic)
# Call graph with per-function stack use (.ci next to each object), read by
# scripts/check-freestanding.sh to compute worst-case stack depth.
set(AIRLOCK_CM3_CALLGRAPH -fcallgraph-info=su)

# --- core: everything in core/, picked up automatically -----------------------
file(GLOB AIRLOCK_CORE_SOURCES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/core/*.c")
add_library(airlock_core_cm3 STATIC ${AIRLOCK_CORE_SOURCES})
target_include_directories(airlock_core_cm3 PUBLIC "${CMAKE_SOURCE_DIR}/include")
target_compile_options(airlock_core_cm3 PRIVATE
  ${AIRLOCK_CM3_WARNINGS} -Wconversion -Wsign-conversion ${AIRLOCK_CM3_CALLGRAPH})

# --- mbedTLS library subset -----------------------------------------------------
set(AIRLOCK_MBEDTLS_MODULES
  asn1parse asn1write bignum constant_time ecdsa ecp ecp_curves md
  memory_buffer_alloc oid pk pk_wrap pkparse platform platform_util
  rsa rsa_internal sha256 sha512)
set(AIRLOCK_MBEDTLS_SOURCES "")
foreach(m IN LISTS AIRLOCK_MBEDTLS_MODULES)
  list(APPEND AIRLOCK_MBEDTLS_SOURCES "${AIRLOCK_MBEDTLS_SRC}/library/${m}.c")
endforeach()
add_library(mbedcrypto_cm3 STATIC ${AIRLOCK_MBEDTLS_SOURCES})
target_include_directories(mbedcrypto_cm3 SYSTEM PUBLIC "${AIRLOCK_MBEDTLS_SRC}/include")
target_compile_definitions(mbedcrypto_cm3 PUBLIC
  "MBEDTLS_CONFIG_FILE=\"${AIRLOCK_MBEDTLS_CONFIG}\"")
target_compile_options(mbedcrypto_cm3 PRIVATE -Wall ${AIRLOCK_CM3_CALLGRAPH})

# --- crypto backend (written by the crypto layer; optional until it exists) ----
if(EXISTS "${CMAKE_SOURCE_DIR}/crypto/mbedtls.c")
  add_library(airlock_crypto_mbedtls_cm3 STATIC "${CMAKE_SOURCE_DIR}/crypto/mbedtls.c")
  target_link_libraries(airlock_crypto_mbedtls_cm3 PUBLIC airlock_core_cm3 mbedcrypto_cm3)
  target_compile_options(airlock_crypto_mbedtls_cm3 PRIVATE
    ${AIRLOCK_CM3_WARNINGS} ${AIRLOCK_CM3_CALLGRAPH})
else()
  message(WARNING "crypto/mbedtls.c not found: cross build covers core/ only")
endif()

# --- agent/ddi.c: the DDI client state machine (freestanding, no crypto) -------
# jsmn is header-only; the cross compiler gets a directory holding only jsmn.h
# (a configure-time copy), never the host's /usr/include.
set(AIRLOCK_JSMN_H "/usr/include/jsmn.h" CACHE FILEPATH "jsmn.h (Debian libjsmn-dev)")
if(EXISTS "${AIRLOCK_JSMN_H}")
  file(COPY "${AIRLOCK_JSMN_H}" DESTINATION "${CMAKE_BINARY_DIR}/jsmn-include")
  add_library(airlock_ddi_cm3 STATIC "${CMAKE_SOURCE_DIR}/agent/ddi.c"
    "${CMAKE_SOURCE_DIR}/agent/ddi_boot.c")
  target_link_libraries(airlock_ddi_cm3 PUBLIC airlock_core_cm3)
  target_include_directories(airlock_ddi_cm3 SYSTEM PRIVATE "${CMAKE_BINARY_DIR}/jsmn-include")
  target_compile_options(airlock_ddi_cm3 PRIVATE
    ${AIRLOCK_CM3_WARNINGS} -Wconversion -Wsign-conversion ${AIRLOCK_CM3_CALLGRAPH})
else()
  message(WARNING "${AIRLOCK_JSMN_H} not found (libjsmn-dev): cross build skips agent/ddi.c")
endif()

# scripts/check-freestanding.sh reads the archives (lib*_cm3.a in the build
# directory) and the .su/.ci files beside the objects under CMakeFiles/.

# The bootloader and example firmware for QEMU's mps2-an385 (tests/qemu).
if(TARGET airlock_crypto_mbedtls_cm3)
  include("${CMAKE_SOURCE_DIR}/cmake/cortexm/qemu-mps2.cmake")
endif()
