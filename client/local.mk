# client/: the rustc wrapper cachepot (see DESIGN.md "The wrapper").
bin_PROGRAMS += cachepot
cachepot_SOURCES = client/main.c client/settings.c client/settings.h client/explain.c client/explain.h \
	client/stats.c client/stats.h client/wrapper.c client/wrapper.h
cachepot_LDADD = libcachepot.a $(DEP_LIBS)
