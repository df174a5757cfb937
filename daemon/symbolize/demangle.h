/* SPDX-License-Identifier: MIT */
/*
 * Demangling of C++ and Rust (legacy and v0) symbol names, by libiberty (binutils' own). The
 * result drops Rust's hash suffix and keeps C++ parameter lists. Thread-safe.
 */
#pragma once

/*
 * The readable name of a mangled symbol (caller frees), or NULL when sym is not mangled. A
 * suffix from "@" on ("@plt" of a PLT stub) is kept after the readable name.
 */
char *demangle(const char *sym);
