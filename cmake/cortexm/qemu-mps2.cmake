# Cortex-M3 images for QEMU's mps2-an385 (included by cmake/cortexm.cmake):
# the airlock bootloader (airlock_boot_mps2.elf) and the example firmware
# (qemu_app.elf, qemu_app_noconfirm.elf, each with a raw .bin for signing).
# Device builds only; tests/qemu drives this build and QEMU from the host.

set(AIRLOCK_CM_DIR "${CMAKE_SOURCE_DIR}/port/cortex-m")
set(AIRLOCK_MPS2_DIR "${CMAKE_SOURCE_DIR}/port/qemu-mps2")
set(AIRLOCK_QEMU_APP_DIR "${CMAKE_SOURCE_DIR}/examples/qemu-app")
# The trusted key compiled into the bootloader and the app: a TEST key
# (examples/qemu-app/keys/test-p256.pem), never for a product.
set(AIRLOCK_QEMU_PUBKEY_C "${AIRLOCK_QEMU_APP_DIR}/keys/test_p256_pub.c" CACHE FILEPATH
    "C array of the bootloader's trusted public key (airlock getpub --lang c)")

# Startup, chain-load, NOR flash port and the board glue.
add_library(airlock_mps2_board STATIC
  "${AIRLOCK_CM_DIR}/startup.c" "${AIRLOCK_CM_DIR}/cm_flash.c"
  "${AIRLOCK_MPS2_DIR}/board.c" "${AIRLOCK_QEMU_PUBKEY_C}")
target_include_directories(airlock_mps2_board PUBLIC "${AIRLOCK_CM_DIR}" "${AIRLOCK_MPS2_DIR}")
target_include_directories(airlock_mps2_board PUBLIC "${CMAKE_SOURCE_DIR}/include")
target_compile_options(airlock_mps2_board PRIVATE ${AIRLOCK_CM3_WARNINGS} -Wconversion)

# The bootloader's crypto: SHA-256 + ECDSA P-256 over an mbedTLS subset built
# with cmake/cortexm/mbedtls_config_p256.h (no PK layer, RSA, SHA-512, P-384).
set(AIRLOCK_MBEDTLS_P256_MODULES asn1parse asn1write bignum constant_time ecdsa ecp
  ecp_curves memory_buffer_alloc platform platform_util sha256)
set(AIRLOCK_MBEDTLS_P256_SOURCES "")
foreach(m IN LISTS AIRLOCK_MBEDTLS_P256_MODULES)
  list(APPEND AIRLOCK_MBEDTLS_P256_SOURCES "${AIRLOCK_MBEDTLS_SRC}/library/${m}.c")
endforeach()
add_library(mbedcrypto_p256 STATIC ${AIRLOCK_MBEDTLS_P256_SOURCES})
target_include_directories(mbedcrypto_p256 SYSTEM PUBLIC "${AIRLOCK_MBEDTLS_SRC}/include")
target_compile_definitions(mbedcrypto_p256 PUBLIC
  "MBEDTLS_CONFIG_FILE=\"${CMAKE_SOURCE_DIR}/cmake/cortexm/mbedtls_config_p256.h\"")
target_compile_options(mbedcrypto_p256 PRIVATE -Wall)
add_library(airlock_crypto_p256 STATIC "${AIRLOCK_CM_DIR}/crypto_p256.c")
target_include_directories(airlock_crypto_p256 PUBLIC "${AIRLOCK_CM_DIR}"
  PRIVATE "${CMAKE_SOURCE_DIR}/crypto")
target_link_libraries(airlock_crypto_p256 PUBLIC mbedcrypto_p256)
target_include_directories(airlock_crypto_p256 PRIVATE "${CMAKE_SOURCE_DIR}/include")
target_compile_options(airlock_crypto_p256 PRIVATE ${AIRLOCK_CM3_WARNINGS} -Wconversion)

# Link-time optimisation for the bootloader: its own copy of core and the
# P-256 libraries compiled with -flto (fat objects, so plain links and nm
# still work); libairlock_core_cm3.a, which scripts/check-freestanding.sh
# inspects, stays as it is.
set(AIRLOCK_BOOT_LTO -flto -ffat-lto-objects)
add_library(airlock_core_boot STATIC ${AIRLOCK_CORE_SOURCES})
target_include_directories(airlock_core_boot PUBLIC "${CMAKE_SOURCE_DIR}/include")
target_compile_options(airlock_core_boot PRIVATE
  ${AIRLOCK_CM3_WARNINGS} -Wconversion -Wsign-conversion ${AIRLOCK_BOOT_LTO})
target_compile_options(mbedcrypto_p256 PRIVATE ${AIRLOCK_BOOT_LTO})
target_compile_options(airlock_crypto_p256 PRIVATE ${AIRLOCK_BOOT_LTO})
target_compile_options(airlock_mps2_board PRIVATE ${AIRLOCK_BOOT_LTO})

# $(name sources... LINKER_SCRIPT ld DEFINES defs...): one ELF + .bin + size report.
function(airlock_mps2_image name)
  cmake_parse_arguments(A "" "LINKER_SCRIPT;CORE" "SOURCES;DEFINES;LIBS" ${ARGN})
  if(NOT A_CORE)
    set(A_CORE airlock_core_cm3)
  endif()
  add_executable(${name} ${A_SOURCES})
  set_target_properties(${name} PROPERTIES SUFFIX ".elf")
  target_compile_definitions(${name} PRIVATE ${A_DEFINES})
  target_compile_options(${name} PRIVATE ${AIRLOCK_CM3_WARNINGS} -Wconversion)
  target_link_libraries(${name} PRIVATE airlock_mps2_board ${A_LIBS} ${A_CORE})
  target_link_options(${name} PRIVATE -nostartfiles --specs=nano.specs
    -L${AIRLOCK_CM_DIR} -T${A_LINKER_SCRIPT} -Wl,-Map=${name}.map)
  set_target_properties(${name} PROPERTIES LINK_DEPENDS
    "${A_LINKER_SCRIPT};${AIRLOCK_CM_DIR}/sections.ld")
  add_custom_command(TARGET ${name} POST_BUILD
    COMMAND ${CMAKE_OBJCOPY} -O binary $<TARGET_FILE:${name}> ${name}.bin
    COMMAND ${CMAKE_SIZE} $<TARGET_FILE:${name}>
    BYPRODUCTS ${name}.bin VERBATIM)
endfunction()

# The bootloader the tests run (P-256 only), and the same with the full
# mbedTLS backend (crypto/mbedtls.c: also P-384, RSA, SHA-384/512) for the
# size comparison.
airlock_mps2_image(airlock_boot_mps2
  SOURCES "${AIRLOCK_MPS2_DIR}/bootloader.c"
  LINKER_SCRIPT "${AIRLOCK_MPS2_DIR}/bootloader.ld"
  LIBS airlock_crypto_p256
  CORE airlock_core_boot)
target_compile_options(airlock_boot_mps2 PRIVATE ${AIRLOCK_BOOT_LTO})
target_link_options(airlock_boot_mps2 PRIVATE -flto -Os)
airlock_mps2_image(airlock_boot_mps2_full
  SOURCES "${AIRLOCK_MPS2_DIR}/bootloader.c"
  LINKER_SCRIPT "${AIRLOCK_MPS2_DIR}/bootloader.ld"
  DEFINES AIRLOCK_BOOT_FULL_CRYPTO
  LIBS airlock_crypto_mbedtls_cm3 mbedcrypto_cm3)
airlock_mps2_image(qemu_app
  SOURCES "${AIRLOCK_QEMU_APP_DIR}/main.c"
  LINKER_SCRIPT "${AIRLOCK_MPS2_DIR}/app.ld"
  DEFINES "APP_VARIANT=\"confirming\""
  LIBS airlock_crypto_mbedtls_cm3 mbedcrypto_cm3)
airlock_mps2_image(qemu_app_noconfirm
  SOURCES "${AIRLOCK_QEMU_APP_DIR}/main.c"
  LINKER_SCRIPT "${AIRLOCK_MPS2_DIR}/app.ld"
  DEFINES "APP_VARIANT=\"no-confirm\"" APP_NO_CONFIRM
  LIBS airlock_crypto_mbedtls_cm3 mbedcrypto_cm3)
