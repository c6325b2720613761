# Drives the consumer projects of tests/consumers/ from ctest (see tests/CMakeLists.txt).
#
#   -DMODE=install  -DBUILD_DIR=<taskjournal build> -DPREFIX=<dir> -DCONFIG=<cfg>
#       Installs the build into PREFIX, emptied first.
#   -DMODE=consume  -DSOURCE_DIR=<consumer> -DBINARY_DIR=<dir> -DCONFIG=<cfg>
#                   -DGENERATOR=… -DMAKE_PROGRAM=… -DCXX_COMPILER=… -DCXX_FLAGS=… -DEXE_LINKER_FLAGS=…
#                   [-DPREFIX=<install prefix>] [-DTASKJOURNAL_SOURCE_DIR=<source tree>]
#       Configures the consumer in BINARY_DIR, emptied first, with the main build's generator,
#       compiler, flags and build type, builds it and runs its `app`, which must exit with 0.
#       With PREFIX, also checks that find_package found taskjournal in PREFIX and nowhere else.
#   -DMODE=build    -DSOURCE_DIR=<project> -DBINARY_DIR=<dir> -DCONFIG=<cfg> (and the rest as above)
#       Configures and builds SOURCE_DIR the same way, without running anything (the Release build
#       of taskjournal itself, tests/CMakeLists.txt).
#   -DEXTRA_ARGS=<arg>|<arg>…  (consume, build) more configure arguments, separated by "|".
#   -DEXPECT_SHARED=ON  (consume, with PREFIX) the app must load libtaskjournal.so from PREFIX.
cmake_minimum_required(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "${what} failed (${result}):\n  ${command}")
  endif()
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  set(config_args)
  if(CONFIG)
    set(config_args --config "${CONFIG}")
  endif()
  run("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args})
  return()
endif()

if(NOT MODE STREQUAL "consume" AND NOT MODE STREQUAL "build")
  message(FATAL_ERROR "MODE must be install, consume or build")
endif()

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")

set(configure_args
  -S "${SOURCE_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}"
  # Packages only from the system and PREFIX: not from the user's package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CONFIG)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
if(PREFIX)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${PREFIX}")
endif()
if(TASKJOURNAL_SOURCE_DIR)
  list(APPEND configure_args "-DTASKJOURNAL_SOURCE_DIR=${TASKJOURNAL_SOURCE_DIR}")
endif()
if(EXTRA_ARGS)
  string(REPLACE "|" ";" extra_args "${EXTRA_ARGS}")
  list(APPEND configure_args ${extra_args})
endif()

# The environment must not steer the consumer elsewhere than the main build.
foreach(var IN ITEMS CMAKE_PREFIX_PATH taskjournal_DIR taskjournal_ROOT CMAKE_GENERATOR
                     CMAKE_BUILD_TYPE CMAKE_TOOLCHAIN_FILE CXX CXXFLAGS LDFLAGS)
  unset(ENV{${var}})
endforeach()

run("configure ${SOURCE_DIR}" "${CMAKE_COMMAND}" ${configure_args})

if(PREFIX)
  file(STRINGS "${BINARY_DIR}/CMakeCache.txt" found_dir REGEX "^taskjournal_DIR:")
  string(REGEX REPLACE "^taskjournal_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  file(REAL_PATH "${PREFIX}" real_prefix)
  file(REAL_PATH "${found_dir}" real_found)
  string(FIND "${real_found}/" "${real_prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "find_package(taskjournal) used ${found_dir}, not the install in ${PREFIX}")
  endif()
endif()

set(build_args --build "${BINARY_DIR}" --parallel 2)
if(CONFIG)
  list(APPEND build_args --config "${CONFIG}")
endif()
run("build ${SOURCE_DIR}" "${CMAKE_COMMAND}" ${build_args})
if(MODE STREQUAL "build")
  return()
endif()

set(app "")
foreach(candidate IN ITEMS "${BINARY_DIR}/app" "${BINARY_DIR}/${CONFIG}/app")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    set(app "${candidate}")
    break()
  endif()
endforeach()
if(NOT app)
  message(FATAL_ERROR "no app built in ${BINARY_DIR}")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/expect_shared_from_prefix.cmake)
run("running ${app}" "${app}")
