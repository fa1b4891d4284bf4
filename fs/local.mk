# fs/: the store and cachepot-fs (see DESIGN.md "The store", "The mount").
libcachepot_a_SOURCES += fs/store.c fs/store.h fs/manifest.c fs/manifest.h fs/fsck.c fs/fsck.h
