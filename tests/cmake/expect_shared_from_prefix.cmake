# Included by the consumer scripts after they built `app`: with EXPECT_SHARED, the app must load
# libtaskjournal.so from PREFIX at run time (not a copy elsewhere on the system).
if(EXPECT_SHARED)
  execute_process(COMMAND ldd "${app}" RESULT_VARIABLE result OUTPUT_VARIABLE out)
  file(REAL_PATH "${PREFIX}" real_prefix)
  set(at -1)
  if(result EQUAL 0 AND out MATCHES "libtaskjournal\\.so[.0-9]* => ([^ ]+) ")
    file(REAL_PATH "${CMAKE_MATCH_1}" loaded)
    string(FIND "${loaded}" "${real_prefix}/" at)
  endif()
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "${app} does not load libtaskjournal.so from ${PREFIX}:\n${out}")
  endif()
endif()
