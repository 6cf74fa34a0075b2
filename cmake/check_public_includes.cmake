# cmake/check_public_includes.cmake - fail when tools/ or fs/ include one of
# the store's internal headers (store/*.h: format.h, codec.h, index.h, ...).
# Their public API is store/include/ only (sb_store.h, sb_io.h). Run by the
# build (cmake -DTOP=... -DSTAMP=... -P this file) before streambus and
# streambusfs are compiled; the include path already hides the internals,
# this also catches a relative path such as "../store/format.h".
file(GLOB internal RELATIVE ${TOP}/store ${TOP}/store/*.h)
set(bad "")
foreach(dir fs tools)
  file(GLOB srcs ${TOP}/${dir}/*.c ${TOP}/${dir}/*.h)
  foreach(src ${srcs})
    file(STRINGS ${src} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
    foreach(line ${lines})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]*)[\">].*" "\\1" inc "${line}")
      get_filename_component(name "${inc}" NAME)
      list(FIND internal "${name}" i)
      set(hit OFF)
      if(i GREATER -1 AND NOT EXISTS ${TOP}/${dir}/${inc})
        set(hit ON)
      endif()
      if(inc MATCHES "store/" AND NOT inc MATCHES "store/include/")
        set(hit ON)
      endif()
      if(hit)
        file(RELATIVE_PATH rel ${TOP} ${src})
        list(APPEND bad "${rel}: #include \"${inc}\"")
      endif()
    endforeach()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "tools/ and fs/ may include only store/include/ "
    "(sb_store.h, sb_io.h), not the store's internal headers:\n  ${bad}")
endif()
if(STAMP)
  file(TOUCH ${STAMP})
endif()
