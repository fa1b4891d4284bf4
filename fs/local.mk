# fs/: the store and cachepot-fs (see DESIGN.md "The store", "The mount").
libcachepot_a_SOURCES += fs/fsck.c fs/fsck.h
