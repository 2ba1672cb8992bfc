// libcurl, as TroveCurl sees it. The variadic setopt/getinfo calls are wrapped in CCurlShim.
#ifndef TROVE_CCURL_SHIM_H
#define TROVE_CCURL_SHIM_H
#include <curl/curl.h>
#endif
