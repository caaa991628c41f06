# Debian packages from the install rules (TailtraceInstall.cmake), one per component:
#   cpack --config <build>/CPackConfig.cmake -G DEB
# Depends on shared libraries come from dpkg-shlibdeps (the ELF files' real needs); the
# dependencies between our own packages are pinned to this exact version, since the gRPC
# transport only accepts a core from the same release.
set(CPACK_PACKAGE_NAME tailtrace)
set(CPACK_PACKAGE_VENDOR "tailtrace")
set(CPACK_PACKAGE_CONTACT "tailtrace maintainers <tailtrace@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OpenTelemetry-compatible tracing for C")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
# Packages install under /usr whatever prefix the tree was configured with; DESTDIR staging keeps
# the install-time prefix /usr, which the collector's configuration rule reads (/etc/tailtrace).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

set(CPACK_COMPONENTS_ALL lib dev)
if(TT_BUILD_GRPC)
  list(APPEND CPACK_COMPONENTS_ALL grpc)
endif()
if(TT_BUILD_COLLECTOR)
  list(APPEND CPACK_COMPONENTS_ALL collector)
endif()

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libtailtrace${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_LIB_DESCRIPTION
  "The shared library. libtailtrace records spans in-process and exports them over OTLP/HTTP. It loads no gRPC; install libtailtrace-grpc${PROJECT_VERSION_MAJOR} to export over OTLP/gRPC.")
set(CPACK_DEBIAN_LIB_PACKAGE_SUGGESTS "libtailtrace-grpc${PROJECT_VERSION_MAJOR}")
# A shlibs file, so packages built against libtailtrace get a Depends on it.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)

set(CPACK_DEBIAN_GRPC_PACKAGE_NAME libtailtrace-grpc${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_GRPC_DESCRIPTION
  "The OTLP/gRPC transport. libtailtrace loads this library when a program exports with OTEL_EXPORTER_OTLP_PROTOCOL=grpc.")
set(CPACK_COMPONENT_GRPC_DEPENDS lib)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libtailtrace-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "Development files. The header, the static library, pkg-config files and the CMake package (find_package(tailtrace)).")
set(CPACK_COMPONENT_DEV_DEPENDS lib)
# What linking libtailtrace.a needs (tailtrace.pc's Libs.private).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libcurl4-openssl-dev | libcurl-dev, zlib1g-dev, libprotobuf-c-dev")
if(TT_BUILD_GRPC)
  set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "libtailtrace-grpc${PROJECT_VERSION_MAJOR}")
endif()

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME tailtrace-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_SECTION net)
set(CPACK_DEBIAN_COLLECTOR_DESCRIPTION
  "Tail-sampling OpenTelemetry (OTLP) collector. tailtrace-collector receives OTLP traces over gRPC and HTTP, holds each trace until it is complete and keeps the ones with errors, the slow ones and a ratio of the rest.")
configure_file(${CMAKE_CURRENT_LIST_DIR}/collector-conffiles.in
  ${PROJECT_BINARY_DIR}/cpack/collector/conffiles @ONLY)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/cpack/collector/conffiles)

include(CPack)
