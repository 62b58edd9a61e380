# cmake -DCASES="binary|flag,binary|flag,..." -P help_lists_own_flags.cmake
#
# Runs each binary with --help and fails unless the output lists `flag` as a
# flag (Abseil prints "--flag (help text); default: ...;"), not just in the
# usage message (where flags appear as "--flag=VALUE"). Abseil's default lists
# only flags from a file named after the program, so a binary built from
# e.g. worker_main.cc printed "No flags matched" (common/program_usage.h).
if(NOT CASES)
  message(FATAL_ERROR "CASES is empty")
endif()
set(failures "")
string(REPLACE "," ";" cases "${CASES}")
foreach(case IN LISTS cases)
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 binary)
  list(GET parts 1 flag)
  execute_process(COMMAND "${binary}" --help
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 30)
  set(text "${out}${err}")
  get_filename_component(name "${binary}" NAME)
  if(NOT text MATCHES "--${flag} \\(")
    string(APPEND failures
      "${name} --help (exit ${rc}) does not list --${flag}:\n${text}\n")
  elseif(text MATCHES "No flags matched")
    string(APPEND failures "${name} --help says \"No flags matched\":\n${text}\n")
  else()
    message(STATUS "${name} --help lists --${flag}")
  endif()
endforeach()
if(failures)
  message(FATAL_ERROR "${failures}")
endif()
