# cmake -DDEMO=<taskjournal-demo> -DJOURNAL=<file> -P run_demo.cmake
#
# Runs the demo on JOURNAL twice (it must be repeatable) and checks that the --inspect process
# printed the three tasks in their final states; then checks the usage exit code.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS DEMO JOURNAL)
  if(NOT ${var})
    message(FATAL_ERROR "usage: cmake -DDEMO=<exe> -DJOURNAL=<file> -P ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()
get_filename_component(dir "${JOURNAL}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")

foreach(round IN ITEMS 1 2)
  execute_process(COMMAND "${DEMO}" "${JOURNAL}"
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "taskjournal-demo exited with ${result} (round ${round}):\n${err}")
  endif()
  foreach(expected IN ITEMS
      "is awaiting input: Which branch\\?"
      "finished: succeeded"
      "A new process \\(pid [0-9]+\\) reopens"
      "task_[0-9a-f]+ +subagent +succeeded +1 +Refactor the parser"
      "task_[0-9a-f]+ +external_agent +failed +1 +Remote code review"
      "task_[0-9a-f]+ +background_tool +canceled +1 +Index the repository"
      "task_created"
      "message_recorded"
      "in reply to req_branch"
      "\"data\":{\"files_changed\":2,")
    if(NOT out MATCHES "${expected}")
      message(FATAL_ERROR "taskjournal-demo output lacks /${expected}/ (round ${round})")
    endif()
  endforeach()
endforeach()

execute_process(COMMAND "${DEMO}" RESULT_VARIABLE result OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT result EQUAL 2 OR NOT err MATCHES "usage: taskjournal-demo")
  message(FATAL_ERROR "taskjournal-demo without arguments: exit ${result}, not 2 with usage")
endif()
execute_process(COMMAND "${DEMO}" "${dir}/no-such-dir/demo.db" "--inspect"
                RESULT_VARIABLE result OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT result EQUAL 1 OR NOT err MATCHES "^taskjournal-demo: ")
  message(FATAL_ERROR "taskjournal-demo on a missing file: exit ${result}, not 1 with an error")
endif()
