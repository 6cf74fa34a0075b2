#!/bin/bash
# userns.sh CMD... - run CMD (as root) in a private mount namespace where /dev/fuse
# is mode 0666, as distributions ship it (this machine's is 0600 root, which makes
# libfuse fail before it can fall back to fusermount3). Nothing outside changes.
exec unshare -m --propagation private bash -c '
  n=$(mktemp -d /tmp/ex10fuse.XXXXXX) && mknod -m 0666 $n/fuse c 10 229 &&
  mount --bind $n/fuse /dev/fuse && exec "$@"' userns "$@"
