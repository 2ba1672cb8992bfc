// Typed, non-variadic wrappers around libcurl's variadic functions, which Swift cannot call.
// One wrapper per argument kind; no logic. Imported only by TroveCurl.
#ifndef TROVE_CCURLSHIM_H
#define TROVE_CCURLSHIM_H
#include <curl/curl.h>

CURLcode CCurlShim_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode CCurlShim_easy_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
CURLcode CCurlShim_easy_setopt_ptr(CURL *handle, CURLoption option, void *value);
CURLcode CCurlShim_easy_setopt_str(CURL *handle, CURLoption option, const char *value);
CURLcode CCurlShim_easy_setopt_write_cb(CURL *handle, CURLoption option, curl_write_callback callback);
CURLcode CCurlShim_easy_setopt_read_cb(CURL *handle, CURLoption option, curl_read_callback callback);
CURLcode CCurlShim_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode CCurlShim_easy_getinfo_ptr(CURL *handle, CURLINFO info, void **value);
CURLcode CCurlShim_easy_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode CCurlShim_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLMcode CCurlShim_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
#endif
