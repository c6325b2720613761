# cmake -DNM=<nm> -DLIBRARY=<libtaskjournal.so> -P check_exports.cmake
#
# Fails, listing them, if the shared library exports (`nm -DC --defined-only`) a symbol of
# taskjournal's internals (taskjournal::store::, ::events::, ::projections::, also inside a
# template's or a lambda's name) or of a third-party library it uses (Boost, SQLiteCpp, cereal,
# RapidJSON): only the public API, declarations marked TASKJOURNAL_API, may leave it.
#
# cmake -DNM=<nm> -DCXX_COMPILER=<c++> -DWORK_DIR=<dir> -DMODE=self_test -P check_exports.cmake
#
# Builds a small shared library that leaks taskjournal::store::leaked() and checks that the check
# above rejects it, naming the symbol.
cmake_minimum_required(VERSION 3.25)

set(forbidden "taskjournal::(store|events|projections)::|boost::|SQLite::|cereal::|rapidjson::")

if(MODE STREQUAL "self_test")
  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}")
  file(WRITE "${WORK_DIR}/leaky.cpp"
       "namespace taskjournal {\nint api() { return 1; }\n"
       "namespace store {\nint leaked() { return 2; }\n}\n}\n")
  execute_process(COMMAND "${CXX_COMPILER}" -shared -fPIC -o "${WORK_DIR}/libleaky.so"
                          "${WORK_DIR}/leaky.cpp" RESULT_VARIABLE result ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "compiling the leaky library failed (${result}):\n${err}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -DNM=${NM} -DLIBRARY=${WORK_DIR}/libleaky.so
                          -P "${CMAKE_CURRENT_LIST_FILE}"
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(result EQUAL 0 OR NOT err MATCHES "taskjournal::store::leaked\\(\\)")
    message(FATAL_ERROR "the check accepted a library exporting taskjournal::store::leaked() "
                        "(exit ${result}):\n${out}${err}")
  endif()
  if(err MATCHES "taskjournal::api\\(\\)")
    message(FATAL_ERROR "the check rejected the public taskjournal::api():\n${err}")
  endif()
  message(STATUS "the check rejects a leaked internal symbol:\n${err}")
  return()
endif()

foreach(var IN ITEMS NM LIBRARY)
  if(NOT ${var})
    message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIBRARY=<shared library> -P ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()
if(NOT EXISTS "${LIBRARY}")
  message(FATAL_ERROR "${LIBRARY} does not exist: build it first")
endif()

execute_process(COMMAND "${NM}" -DC --defined-only "${LIBRARY}"
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${NM} -DC --defined-only ${LIBRARY} failed (${result}):\n${err}")
endif()
# A symbol's demangled name may contain ';', which would split a CMake list: replace it first.
string(REPLACE ";" "<semicolon>" out "${out}")
string(REPLACE "\n" ";" lines "${out}")
set(total 0)
set(leaked "")
set(leaked_count 0)
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^[0-9a-fA-F]+ [A-Za-z] (.*)$")
    continue()
  endif()
  set(symbol "${CMAKE_MATCH_1}")
  math(EXPR total "${total} + 1")
  if(symbol MATCHES "${forbidden}")
    math(EXPR leaked_count "${leaked_count} + 1")
    string(APPEND leaked "  ${symbol}\n")
  endif()
endforeach()

get_filename_component(name "${LIBRARY}" NAME)
if(leaked_count GREATER 0)
  message(FATAL_ERROR "${name} exports ${total} symbols, ${leaked_count} of them internal or "
                      "third-party (${forbidden}):\n${leaked}Only declarations marked "
                      "TASKJOURNAL_API may be exported: check the visibility settings of the "
                      "taskjournal target and cmake/taskjournal.map.")
endif()
message(STATUS "${name} exports ${total} symbols, none internal or third-party")
