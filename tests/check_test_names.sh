#!/bin/sh
# ctest test_case_names: no Catch2 TEST_CASE name holds a ';'. CMake splits
# a discovered test's name at ';' (its list separator), so such a case is
# run under a truncated name that matches nothing, and Catch2 passes having
# run nothing: the case is silently never tested.
if grep -rn 'TEST_CASE("[^"]*;' "$1"; then
  echo "a TEST_CASE name above holds ';': ctest would never run it (use ',')" >&2
  exit 1
fi
