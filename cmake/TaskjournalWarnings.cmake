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
  endif()
endfunction()
