// Beast's HTTP headers, for every file of the proxy that parses or writes
// HTTP. Include it before any other Beast header.
//
// GCC 12 reports a -Wmaybe-uninitialized false positive inside Beast 1.74's
// basic_parser (a boost::optional returned by content_length_unchecked) when
// building with sanitizers; it is found after inlining, which the system-header
// exemption does not cover. The suppression is limited to these headers' lines.
#pragma once

// clang has no such warning and refuses to ignore an unknown one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
