# SPDX-License-Identifier: MIT
# bpf_skeleton(<name> <source.bpf.c>): compiles a BPF object with clang and generates
# <name>.skel.h with bpftool into the build tree; adds the target <name>_skel (an INTERFACE
# library whose include directory holds the header).
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# x86-64 only: bpf/profq.bpf.c reads x86 registers (pt_regs ip/sp/bp, cs) and x86-64 system
# call numbers, and the unwinder (daemon/unwind/) follows x86-64 CFI. Another architecture needs
# a port of those, not just another -D__TARGET_ARCH_ here.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(BPF_TARGET_ARCH x86)
else()
  message(FATAL_ERROR "profq supports x86-64 only, not '${CMAKE_SYSTEM_PROCESSOR}': its BPF "
                      "program reads x86-64 registers and system call numbers and its unwinder "
                      "follows x86-64 call frame information")
endif()

# Debian keeps asm/ headers under the multiarch directory, which clang -target bpf does not
# search by itself.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE BPF_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)

function(bpf_skeleton name source)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  get_filename_component(src_dir ${source} DIRECTORY)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Werror -I${src_dir} -I${PROJECT_SOURCE_DIR}/bpf
            -I/usr/include/${BPF_MULTIARCH} -c ${source} -o ${obj}
    DEPENDS ${source} ${PROJECT_SOURCE_DIR}/bpf/profq.h ${PROJECT_SOURCE_DIR}/bpf/kernel_types.h
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
