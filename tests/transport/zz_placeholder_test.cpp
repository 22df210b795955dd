// TEMPORARY placeholder so that the wspush_unit_tests target has a source while tests/ is being
// written (CMake refuses an executable without sources). Delete once real unit tests exist.
