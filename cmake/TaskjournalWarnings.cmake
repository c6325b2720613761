# Warnings (as errors with TASKJOURNAL_WERROR) and optional sanitizers, for taskjournal's own
# targets only.
function(taskjournal_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  if(TASKJOURNAL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(TASKJOURNAL_SANITIZE)
    list(JOIN TASKJOURNAL_SANITIZE "," _san)
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
    # g++ warns that TSan does not model atomic_thread_fence (store/sqlite/engine.cpp orders
    # reads of SQLite's shared memory, which uninstrumented SQLite writes: nothing to check).
    if("thread" IN_LIST TASKJOURNAL_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
    # With -fsanitize=address, g++ 12 reports -Wmaybe-uninitialized inside libstdc++'s own
    # <regex> (std::function in _State's move constructor; tests/registry_test.cpp): a false
    # positive the instrumentation causes (GCC's manual: sanitizers make such warnings
    # unreliable), which must not break a sanitizer build with -DTASKJOURNAL_WERROR=ON.
    if("address" IN_LIST TASKJOURNAL_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()
