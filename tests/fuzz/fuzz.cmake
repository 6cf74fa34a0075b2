# tests/fuzz/fuzz.cmake - the libFuzzer targets (included by CMakeLists.txt
# with -DSB_FUZZ=ON). Each tests/fuzz/fuzz_*.c is one target, built with
# libFuzzer, ASan and UBSan over a copy of store/ (and fs/ without main.c)
# instrumented the same way. Run them with tools/fuzz.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SB_FUZZ needs clang (libFuzzer): configure with "
    "-DCMAKE_C_COMPILER=clang-14 in a separate build directory (build-fuzz); "
    "Debian packages clang-14 libclang-rt-14-dev libfuzzer-14-dev")
endif()

set(SB_FUZZ_CFLAGS -g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
set(SB_FUZZ_LFLAGS -fsanitize=fuzzer,address,undefined)

# Check once that libFuzzer links (clang without libclang-rt-14-dev /
# libfuzzer-14-dev fails here, not at the first target).
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer,address,undefined")
check_c_source_compiles("
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
  SB_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT SB_HAVE_LIBFUZZER)
  message(FATAL_ERROR "SB_FUZZ: ${CMAKE_C_COMPILER} cannot link -fsanitize=fuzzer "
    "(install libclang-rt-14-dev and libfuzzer-14-dev)")
endif()

target_compile_options(sbstore PRIVATE ${SB_FUZZ_CFLAGS})

# fs/ for the targets that drive the daemon's code; main.c (start and stop,
# sbfs_shutdown among them) without its main(), which libFuzzer has.
file(GLOB SB_FUZZ_FS_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fs/*.c)
set_source_files_properties(${CMAKE_SOURCE_DIR}/fs/main.c PROPERTIES
  COMPILE_DEFINITIONS main=sbfs_daemon_main)
add_library(sbfs_fuzz STATIC ${SB_FUZZ_FS_SRC})
target_include_directories(sbfs_fuzz PUBLIC ${CMAKE_SOURCE_DIR}/fs)
target_compile_options(sbfs_fuzz PRIVATE ${SB_FUZZ_CFLAGS})
target_link_libraries(sbfs_fuzz PUBLIC sbstore PkgConfig::FUSE3 PkgConfig::INIH PkgConfig::RDKAFKA)

file(GLOB SB_FUZZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
set(SB_FUZZ_TARGETS "")
foreach(src ${SB_FUZZ_SRC})
  get_filename_component(name ${src} NAME_WE)
  # util_keytable.c: forged key tables, shared with the unit tests
  add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/util.c
    ${CMAKE_SOURCE_DIR}/tests/unit/util_keytable.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz ${CMAKE_SOURCE_DIR}/tests/unit
    ${CMAKE_SOURCE_DIR}/store)
  target_compile_options(${name} PRIVATE ${SB_FUZZ_CFLAGS})
  target_link_options(${name} PRIVATE ${SB_FUZZ_LFLAGS})
  target_link_libraries(${name} PRIVATE sbfs_fuzz sbstore)
  list(APPEND SB_FUZZ_TARGETS ${name})
endforeach()

# fuzz-seeds OUTDIR: the seed inputs of the binary targets (tests/fuzz/seeds.c).
add_executable(fuzz-seeds ${CMAKE_SOURCE_DIR}/tests/fuzz/seeds.c ${CMAKE_SOURCE_DIR}/tests/fuzz/util.c)
target_include_directories(fuzz-seeds PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz ${CMAKE_SOURCE_DIR}/store)
target_link_libraries(fuzz-seeds PRIVATE sbstore)
target_link_options(fuzz-seeds PRIVATE -fsanitize=address,undefined)
target_compile_options(fuzz-seeds PRIVATE -fsanitize=address,undefined)
