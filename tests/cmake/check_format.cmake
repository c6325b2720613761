# cmake -DCLANG_FORMAT=<clang-format> -DSOURCE_DIR=<repo root> -P check_format.cmake
#
# `clang-format --dry-run --Werror` over taskjournal's C++ sources, with the repository's
# .clang-format. Fix a failure with: clang-format -i <the files it names>.
cmake_minimum_required(VERSION 3.25)

if(NOT CLANG_FORMAT OR NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DCLANG_FORMAT=<exe> -DSOURCE_DIR=<dir> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()

set(patterns)
foreach(dir IN ITEMS include events projections store tools tests/support tests/consumers tests/postgres)
  list(APPEND patterns "${SOURCE_DIR}/${dir}/*.hpp" "${SOURCE_DIR}/${dir}/*.cpp"
                       "${SOURCE_DIR}/${dir}/*.h" "${SOURCE_DIR}/${dir}/*.cc")
endforeach()
file(GLOB_RECURSE files LIST_DIRECTORIES false ${patterns})
file(GLOB tests_top LIST_DIRECTORIES false "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/tests/*.hpp")
list(APPEND files ${tests_top})
list(REMOVE_DUPLICATES files)
list(SORT files)
if(NOT files)
  message(FATAL_ERROR "no sources found under ${SOURCE_DIR}")
endif()

execute_process(
  COMMAND "${CLANG_FORMAT}" --dry-run --Werror --style=file ${files}
  WORKING_DIRECTORY "${SOURCE_DIR}"
  RESULT_VARIABLE result
  ERROR_VARIABLE diagnostics)
list(LENGTH files count)
if(NOT result EQUAL 0)
  # One line per file that needs formatting, with its first offending line.
  string(REGEX MATCHALL "[^\n]+: error: code should be clang-formatted" hits "${diagnostics}")
  set(offenders "")
  set(report "")
  foreach(hit IN LISTS hits)
    string(REGEX REPLACE ":([0-9]+):[0-9]+: error: .*" "" file "${hit}")
    string(REGEX REPLACE ".*:([0-9]+):[0-9]+: error: .*" "\\1" line "${hit}")
    if(NOT file IN_LIST offenders)
      list(APPEND offenders "${file}")
      file(RELATIVE_PATH rel "${SOURCE_DIR}" "${file}")
      string(APPEND report "  ${rel} (from line ${line})\n")
    endif()
  endforeach()
  if(NOT offenders)
    set(report "${diagnostics}")
  endif()
  list(LENGTH offenders n)
  message(FATAL_ERROR "clang-format: ${n} of ${count} files are not formatted:\n${report}"
                      "Fix with: clang-format -i <file>…  (clang-format --dry-run <file> shows where)")
endif()
message(STATUS "clang-format: ${count} files formatted")
