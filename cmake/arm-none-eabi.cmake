# CMake toolchain file: Cortex-M3 (ARMv7-M, Thumb-2) with Debian's
# gcc-arm-none-eabi + newlib. Used for the freestanding cross check of core/
# and the mbedTLS crypto backend:
#   cmake -B build-cm3 --toolchain cmake/arm-none-eabi.cmake -DAIRLOCK_MBEDTLS_SRC=...
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(AIRLOCK_CROSS_PREFIX arm-none-eabi- CACHE STRING "Cross tool prefix")
set(CMAKE_C_COMPILER ${AIRLOCK_CROSS_PREFIX}gcc)
set(CMAKE_ASM_COMPILER ${AIRLOCK_CROSS_PREFIX}gcc)
set(CMAKE_AR ${AIRLOCK_CROSS_PREFIX}ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${AIRLOCK_CROSS_PREFIX}ranlib CACHE FILEPATH "")
set(CMAKE_SIZE ${AIRLOCK_CROSS_PREFIX}size CACHE FILEPATH "")
set(CMAKE_NM ${AIRLOCK_CROSS_PREFIX}nm CACHE FILEPATH "")

# No OS to link test programs against: probe the compiler with a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(AIRLOCK_CPU_FLAGS "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
set(CMAKE_C_FLAGS_INIT
    "${AIRLOCK_CPU_FLAGS} -ffreestanding -ffunction-sections -fdata-sections -fstack-usage")
# -Os without -DNDEBUG: an assert() in device code must show up (as
# __assert_func) in scripts/check-freestanding.sh, not vanish in this build only.
set(CMAKE_C_FLAGS_MINSIZEREL "-Os" CACHE STRING "Flags for MinSizeRel builds")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${AIRLOCK_CPU_FLAGS} -Wl,--gc-sections")
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE MinSizeRel CACHE STRING "Build type")
endif()

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
