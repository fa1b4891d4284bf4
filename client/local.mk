# client/: the rustc wrapper cachepot (see DESIGN.md "The wrapper").
