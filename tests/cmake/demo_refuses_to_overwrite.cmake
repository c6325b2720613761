# cmake -DDEMO=<taskjournal-demo> -DMAKE_JOURNAL=<program writing tasks.db> -DDIR=<scratch dir>
#       -P demo_refuses_to_overwrite.cmake
#
# taskjournal-demo FILE replaces FILE only if it is a journal of an earlier demo run (issue #10):
# on a text file, on a journal holding another session's tasks, and beside a left-over -wal file
# it must exit with 1, say what to do, and leave every file as it was. MAKE_JOURNAL is a program
# that writes a journal named tasks.db, with tasks of its own session, in its working directory.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS DEMO MAKE_JOURNAL DIR)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is not set: see the usage in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")

# Runs the demo on `file`; it must refuse, mentioning `reason`, and leave `file` unchanged.
function(expect_refusal file reason)
  set(before "")
  if(EXISTS "${file}")
    file(SHA256 "${file}" before)
  endif()
  execute_process(COMMAND "${DEMO}" "${file}"
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 1)
    message(FATAL_ERROR "taskjournal-demo ${file}: exit ${result}, not 1\n${out}${err}")
  endif()
  foreach(expected IN ITEMS "^taskjournal-demo: will not overwrite " "${reason}"
                            "give a FILE that does not exist")
    if(NOT err MATCHES "${expected}")
      message(FATAL_ERROR "taskjournal-demo ${file}: stderr lacks /${expected}/:\n${err}")
    endif()
  endforeach()
  if(out MATCHES "demo: journal")
    message(FATAL_ERROR "taskjournal-demo ${file} started the demo before refusing:\n${out}")
  endif()
  if(before)
    file(SHA256 "${file}" after)
    if(NOT before STREQUAL after)
      message(FATAL_ERROR "taskjournal-demo changed ${file} although it refused")
    endif()
  endif()
  message(STATUS "refused ${file}: ${err}")
endfunction()

# A text file.
file(WRITE "${DIR}/notes.txt" "Not a journal: notes nobody wants to lose.\n")
expect_refusal("${DIR}/notes.txt" "it is not a readable taskjournal journal")

# A journal, but of another program's session.
execute_process(COMMAND "${MAKE_JOURNAL}" WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE result
                OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT result EQUAL 0 OR NOT EXISTS "${DIR}/tasks.db")
  message(FATAL_ERROR "${MAKE_JOURNAL} wrote no tasks.db in ${DIR} (exit ${result}):\n${err}")
endif()
expect_refusal("${DIR}/tasks.db" "it is a journal with tasks of session \"")

# No FILE, but a -wal file that SQLite would apply to a new FILE.
file(WRITE "${DIR}/orphan.db-wal" "left over\n")
expect_refusal("${DIR}/orphan.db" "orphan\\.db-wal exists without ")
if(EXISTS "${DIR}/orphan.db")
  message(FATAL_ERROR "taskjournal-demo created ${DIR}/orphan.db although it refused")
endif()
