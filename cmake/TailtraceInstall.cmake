# What `cmake --install` (and `make install PREFIX=...`) puts where, the pkg-config and CMake
# package files, and the Debian packages CPack builds from the same rules (`cpack -G DEB`).
#
# Components, one per Debian package:
#   lib        libtailtrace.so.0                                   -> libtailtrace0
#   grpc       libtailtrace-grpc.so.0                              -> libtailtrace-grpc0
#   dev        header, .so links, libtailtrace.a, tailtrace.pc,    -> libtailtrace-dev
#              tailtrace-grpc.pc, the CMake package
#   collector  tailtrace-collector, its configuration, the unit    -> tailtrace-collector
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tailtrace)
set(TT_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS tailtrace LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib
  NAMELINK_COMPONENT dev)
install(TARGETS tailtrace_archive ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/include/tailtrace.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# pkg-config files find their prefix from their own place (${pcfiledir}), so the tree installed
# by `cmake --install --prefix` works wherever it lands.
file(RELATIVE_PATH TT_PC_TO_PREFIX /prefix/${TT_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" TT_PC_TO_PREFIX "${TT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/tailtrace.pc.in ${PROJECT_BINARY_DIR}/tailtrace.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tailtrace.pc DESTINATION ${TT_PC_DIR} COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/tailtraceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tailtraceConfig.cmake INSTALL_DESTINATION ${TT_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# 0.x releases may break the API between minor versions, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tailtraceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tailtraceConfig.cmake
  ${PROJECT_BINARY_DIR}/tailtraceConfigVersion.cmake DESTINATION ${TT_CMAKE_DIR} COMPONENT dev)

if(TT_BUILD_GRPC)
  install(TARGETS tailtrace-grpc LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT grpc
    NAMELINK_COMPONENT dev)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/tailtrace-grpc.pc.in
    ${PROJECT_BINARY_DIR}/tailtrace-grpc.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/tailtrace-grpc.pc DESTINATION ${TT_PC_DIR} COMPONENT dev)
endif()

if(TT_BUILD_COLLECTOR)
  install(TARGETS tailtrace-collector RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    COMPONENT collector)
  # /etc/tailtrace for the /usr prefix (the Debian package), <prefix>/etc/tailtrace otherwise.
  # Decided when installing, since `cmake --install --prefix` chooses the prefix only then.
  install(CODE "
    if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
      set(_tt_etc /etc/tailtrace)
    else()
      set(_tt_etc \"\${CMAKE_INSTALL_PREFIX}/etc/tailtrace\")
    endif()
    file(INSTALL \"${PROJECT_SOURCE_DIR}/deploy/tailtrace-collector.yaml\"
      DESTINATION \"\${_tt_etc}\" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)"
    COMPONENT collector)
  install(FILES ${PROJECT_SOURCE_DIR}/deploy/tailtrace-collector.service
    DESTINATION lib/systemd/system COMPONENT collector OPTIONAL)
endif()

# The license beside each package's files, where Debian looks for it
# (/usr/share/doc/<package>/copyright).
foreach(comp_pkg "lib:libtailtrace${PROJECT_VERSION_MAJOR}" "dev:libtailtrace-dev"
    "grpc:libtailtrace-grpc${PROJECT_VERSION_MAJOR}" "collector:tailtrace-collector")
  string(REPLACE ":" ";" comp_pkg ${comp_pkg})
  list(GET comp_pkg 0 comp)
  list(GET comp_pkg 1 pkg)
  if((comp STREQUAL "grpc" AND NOT TT_BUILD_GRPC) OR (comp STREQUAL "collector" AND NOT TT_BUILD_COLLECTOR))
    continue()
  endif()
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg}
    RENAME copyright COMPONENT ${comp})
endforeach()

# Packages are made from tailtrace's own build, not from a project that includes it.
if(PROJECT_IS_TOP_LEVEL)
  include(${CMAKE_CURRENT_LIST_DIR}/TailtraceCPack.cmake)
endif()
