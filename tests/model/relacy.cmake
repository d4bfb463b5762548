# Relacy model check of the real deque (src/deque.h, src/deque.c) and of its
# ordering mutants: tests/model/run_relacy.sh. Meant to be include()d from a
# tests CMakeLists. The script exits 77 (skipped) when <relacy/relacy.hpp>
# (Debian: relacy-dev) is missing; it builds with the project's C++
# compiler, in <build>/model-relacy.
include(CheckIncludeFileCXX)
check_include_file_cxx(relacy/relacy.hpp WSCHED_HAVE_RELACY)
if(NOT WSCHED_HAVE_RELACY)
  message(STATUS "relacy/relacy.hpp not found: test model_relacy will be skipped")
endif()
add_test(NAME model_relacy
  COMMAND ${CMAKE_COMMAND} -E env CXX=${CMAKE_CXX_COMPILER}
          bash ${CMAKE_CURRENT_LIST_DIR}/run_relacy.sh ${CMAKE_BINARY_DIR}/model-relacy)
set_tests_properties(model_relacy PROPERTIES
  LABELS model
  TIMEOUT 900
  SKIP_RETURN_CODE 77)
