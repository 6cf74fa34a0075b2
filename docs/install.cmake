# docs/install.cmake - included from CMakeLists.txt: what `cmake --install`
# puts beside the two programs (which CMakeLists.txt installs into bin/):
#   share/man/man1/streambus.1
#   share/man/man5/streambus-mount.ini.5
#   share/man/man8/streambusfs.8
#   share/doc/streambus/{mnt-streambus.mount,fstab,mount.ini,README.md,FORMAT.md}
include(GNUInstallDirs)

set(SB_DOCS ${CMAKE_CURRENT_LIST_DIR})
install(FILES ${SB_DOCS}/streambus.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${SB_DOCS}/streambus-mount.ini.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${SB_DOCS}/streambusfs.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES
	${SB_DOCS}/examples/mnt-streambus.mount
	${SB_DOCS}/examples/fstab
	${SB_DOCS}/examples/mount.ini
	${SB_DOCS}/../README.md
	${SB_DOCS}/FORMAT.md
	DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/streambus)
