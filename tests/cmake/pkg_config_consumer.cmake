# cmake -DPKG_CONFIG=<pkg-config> -DPREFIX=<taskjournal install prefix> -DSOURCE=<main.cpp>
#       -DBINARY_DIR=<dir> -DCXX_COMPILER=<c++> [-DCXX_FLAGS=…] [-DEXE_LINKER_FLAGS=…]
#       [-DSTATIC=ON | -DEXPECT_SHARED=ON] -P pkg_config_consumer.cmake
#
# Builds SOURCE the way a project without CMake does, with the flags of
# `pkg-config --cflags --libs taskjournal` (and --static for a static taskjournal) from PREFIX's
# taskjournal.pc, then runs it: it must exit with 0. Also checks that the .pc file points into
# PREFIX (it finds its prefix from its own place) and, with STATIC, that it names the static
# library's dependencies.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS PKG_CONFIG PREFIX SOURCE BINARY_DIR CXX_COMPILER)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is not set: see the usage in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "${what} failed (${result}):\n  ${command}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(GLOB pc_files "${PREFIX}/lib/pkgconfig/taskjournal.pc" "${PREFIX}/lib*/pkgconfig/taskjournal.pc"
     "${PREFIX}/lib/*/pkgconfig/taskjournal.pc")
list(REMOVE_DUPLICATES pc_files)
list(LENGTH pc_files count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one taskjournal.pc under ${PREFIX}, found ${count}: ${pc_files}")
endif()
get_filename_component(pc_dir "${pc_files}" DIRECTORY)

# Only PREFIX's taskjournal.pc, beside the system's .pc files (sqlite3, libcrypto).
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})
foreach(var IN ITEMS CXX CXXFLAGS LDFLAGS CPATH CPLUS_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH)
  unset(ENV{${var}})
endforeach()

set(static_arg "")
if(STATIC)
  set(static_arg --static)
endif()
run("pkg-config --cflags --libs ${static_arg} taskjournal"
    "${PKG_CONFIG}" --cflags --libs ${static_arg} taskjournal)
set(flags "${run_output}")
message(STATUS "pkg-config --cflags --libs ${static_arg} taskjournal: ${flags}")
if(STATIC AND NOT flags MATCHES "-lSQLiteCpp" OR STATIC AND NOT flags MATCHES "-lsqlite3"
   OR STATIC AND NOT flags MATCHES "-lcrypto")
  message(FATAL_ERROR "taskjournal.pc lacks the static library's dependencies: ${flags}")
endif()

file(REAL_PATH "${PREFIX}" real_prefix)
foreach(variable IN ITEMS includedir libdir)
  run("pkg-config --variable=${variable}" "${PKG_CONFIG}" --variable=${variable} taskjournal)
  file(REAL_PATH "${run_output}" real_dir)
  string(FIND "${real_dir}/" "${real_prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "taskjournal.pc's ${variable} is ${run_output}, not inside ${PREFIX}")
  endif()
  set(${variable} "${real_dir}")
endforeach()

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
separate_arguments(linker_flags UNIX_COMMAND "${EXE_LINKER_FLAGS}")
# The run-time search path of a shared libtaskjournal: PREFIX is not a system directory.
run("compile ${SOURCE}" "${CXX_COMPILER}" ${cxx_flags} "${SOURCE}" -o "${BINARY_DIR}/app"
    ${flags} ${linker_flags} "-Wl,-rpath,${libdir}")
set(app "${BINARY_DIR}/app")
include(${CMAKE_CURRENT_LIST_DIR}/expect_shared_from_prefix.cmake)
run("running ${BINARY_DIR}/app" "${BINARY_DIR}/app")
message(STATUS "${BINARY_DIR}/app: ${run_output}")
