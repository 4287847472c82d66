/* The API's error codes: stable strings clients may match on, each with its HTTP status. The one
 * list; docs/api.md documents the same set. */
#ifndef SPROUT_API_ERRORS_H
#define SPROUT_API_ERRORS_H

#include "metrics.h"

#define API_ERRORS(X)                                                                              \
        X(INVALID_JSON, 400, "invalid_json")                                                       \
        X(INVALID_REQUEST, 400, "invalid_request")                                                 \
        X(UNKNOWN_FIELD, 400, "unknown_field")                                                     \
        X(MISSING_FIELD, 400, "missing_field")                                                     \
        X(INVALID_FIELD, 400, "invalid_field")                                                     \
        X(INVALID_ID, 400, "invalid_id")                                                           \
        X(NOT_FOUND, 404, "not_found")                                                             \
        X(SNAPSHOT_NOT_FOUND, 404, "snapshot_not_found")                                           \
        X(CLONE_NOT_FOUND, 404, "clone_not_found")                                                 \
        X(METHOD_NOT_ALLOWED, 405, "method_not_allowed")                                           \
        X(SNAPSHOT_NOT_READY, 409, "snapshot_not_ready")                                           \
        X(SNAPSHOT_IN_USE, 409, "snapshot_in_use")                                                 \
        X(SNAPSHOT_BUSY, 409, "snapshot_busy")                                                     \
        X(SNAPSHOT_INCOMPATIBLE, 409, "snapshot_incompatible")                                     \
        X(CLONE_BUSY, 409, "clone_busy")                                                           \
        X(CLONE_DEAD, 409, "clone_dead")                                                           \
        X(BODY_TOO_LARGE, 413, "body_too_large")                                                   \
        X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type")                                   \
        X(TOO_MANY_CLONES, 429, "too_many_clones")                                                 \
        X(QUEUE_FULL, 429, "queue_full")                                                           \
        X(TOO_MANY_PREWARMS, 429, "too_many_prewarms")                                             \
        X(TOO_MANY_CONNECTIONS, 429, "too_many_connections")                                       \
        X(QUOTA_EXCEEDED, 429, "quota_exceeded")                                                   \
        X(INTERNAL, 500, "internal")                                                               \
        X(SNAPSHOT_LOAD_FAILED, 500, "snapshot_load_failed")                                       \
        X(CLONE_FAILED, 500, "clone_failed")                                                       \
        X(INVOKE_FAILED, 502, "invoke_failed")                                                     \
        X(WORKER_DIED, 502, "worker_died")                                                         \
        X(SHUTTING_DOWN, 503, "shutting_down")                                                     \
        X(KVM_UNAVAILABLE, 503, "kvm_unavailable")                                                 \
        X(INVOKE_TIMEOUT, 504, "invoke_timeout")

enum api_errc {
#define X(name, status, code) API_E_##name,
        API_ERRORS(X)
#undef X
            API_E_COUNT
};

_Static_assert(API_E_COUNT <= METRICS_ERROR_SLOTS, "the service counts errors in fixed slots");

unsigned api_err_status(enum api_errc e);
const char *api_err_code(enum api_errc e);

#endif
