# cmake -DINCLUDE_DIR=<dir> -P check_public_includes.cmake
#
# Fails, naming file, line and header, if a header under INCLUDE_DIR includes anything but a
# standard C++ header (<vector>) or one of taskjournal's own (taskjournal/….hpp). The public API
# depends on the standard library only (DESIGN habit 1): SQLite, SQLiteCpp, cereal, Boost,
# RapidJSON and OpenSSL stay behind the library's .cpp files.
cmake_minimum_required(VERSION 3.25)

if(NOT INCLUDE_DIR OR NOT IS_DIRECTORY "${INCLUDE_DIR}")
  message(FATAL_ERROR "usage: cmake -DINCLUDE_DIR=<include dir> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()

set(third_party "sqlite3|SQLiteCpp|cereal|boost|rapidjson|openssl")
file(GLOB_RECURSE headers LIST_DIRECTORIES false "${INCLUDE_DIR}/*")
list(SORT headers)
set(failures "")
set(checked 0)
foreach(header IN LISTS headers)
  math(EXPR checked "${checked} + 1")
  file(RELATIVE_PATH rel "${INCLUDE_DIR}" "${header}")
  file(STRINGS "${header}" lines)
  set(lineno 0)
  foreach(line IN LISTS lines)
    math(EXPR lineno "${lineno} + 1")
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*([<\"][^>\"]*[>\"])")
      continue()
    endif()
    set(spec "${CMAKE_MATCH_1}")
    string(REGEX REPLACE "^[<\"](.*)[>\"]$" "\\1" name "${spec}")
    if(name MATCHES "^(${third_party})([/._]|$)" OR name MATCHES "/(${third_party})[/._]")
      string(APPEND failures "  ${rel}:${lineno}: third-party header <${name}>\n")
    elseif(name MATCHES "^taskjournal/[A-Za-z0-9_]+\\.hpp$")
      # taskjournal's own public header
    elseif(spec MATCHES "^<[a-z_0-9]+>$")
      # a standard C++ header
    else()
      string(APPEND failures "  ${rel}:${lineno}: not a standard C++ header: ${spec}\n")
    endif()
  endforeach()
endforeach()

if(checked EQUAL 0)
  message(FATAL_ERROR "no headers found under ${INCLUDE_DIR}")
endif()
if(failures)
  message(FATAL_ERROR
    "Public headers must include only the standard library and taskjournal/ headers:\n"
    "${failures}")
endif()
message(STATUS "${checked} public headers include only the standard library and taskjournal/")
