# CPack: `cpack -G DEB` in a build directory (or `cpack --config
# BUILD/CPackConfig.cmake -B OUTDIR`) makes libwsched-dev_VERSION-1_ARCH.deb,
# holding what `cmake --install` installs: the shared library and its
# soname link, the static archive, include/*.h(pp), the pkg-config file, the
# CMake package files and the LICENSE. Included by the top-level
# CMakeLists.txt when wsched is the top-level project.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libwsched-dev)
set(CPACK_PACKAGE_VENDOR "the wsched authors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "wsched maintainers <wsched@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "wsched runs batches of jobs on a pool of worker threads that steal work\n"
  "from one another through lock-free deques: per-job result slots,\n"
  "fork-join, streams, priorities, deadlines and quorum waits.\n"
  "This package holds the shared and the static library, the C header(s),\n"
  "the pkg-config file and the CMake package (find_package(wsched)).")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_INSTALL_DIRECTORY wsched)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${PROJECT_HOMEPAGE_URL}")
# The shared library's run-time dependencies (libc6, liburcu8, libjemalloc2
# when linked) come from dpkg-shlibdeps; the static archive and the CMake and
# pkg-config files name liburcu's (and jemalloc's) libraries for static
# links, which only their -dev packages provide.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "liburcu-dev")
if(WSCHED_JEMALLOC)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libjemalloc-dev")
endif()

include(CPack)
