# The ctest `sdk_package` (tests/modules/CMakeLists.txt): the SDK as a studio
# gets it. Installs the `sdk` component of BUILD_DIR into a fresh prefix,
# configures SOURCE_DIR (sdk/examples/minimal) with a new cmake that knows
# only that prefix, builds it, and runs the installed skirmish-game-check on
# the module it built. Any step failing fails the test with its output.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [-DGENERATOR=Ninja] [-DDOC=docs/games.md] -P package_test.cmake
foreach(v BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "package_test.cmake: -D${v}= is required")
  endif()
endforeach()
if(NOT GENERATOR)
  set(GENERATOR "Ninja")
endif()
set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sdk_package: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "sdk_package: ${what}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run("install the sdk component" ${CMAKE_COMMAND} --install ${BUILD_DIR} --component sdk --prefix ${prefix})
foreach(f include/skirmish/game.h include/skirmish/game_check.h lib/cmake/Skirmish/SkirmishConfig.cmake bin/skirmish-game-check)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "sdk_package: ${f} was not installed")
  endif()
endforeach()
# A fresh configure: no cache, no toolchain hints but the prefix.
run("configure the example" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run("build the example" ${CMAKE_COMMAND} --build ${build})
file(GLOB modules ${build}/*.so)
list(LENGTH modules n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "sdk_package: expected one module in ${build}, found: ${modules}")
endif()
run("skirmish-game-check ${modules}" ${prefix}/bin/skirmish-game-check ${modules} --ticks 5000 --seed 3)
message(STATUS "${last_output}")
run("the example's own ctest (Skirmish::game_check)" ${CMAKE_CTEST_COMMAND} --test-dir ${build} --output-on-failure)

# docs/games.md shows the example whole: it must be the example as built.
if(DOC)
  file(READ ${DOC} doc)
  foreach(f rps.c CMakeLists.txt)
    file(READ ${SOURCE_DIR}/${f} text)
    string(FIND "${doc}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "sdk_package: ${DOC} does not hold ${SOURCE_DIR}/${f} verbatim")
    endif()
  endforeach()
  message(STATUS "sdk_package: ${DOC} shows the example as built: ok")
endif()
