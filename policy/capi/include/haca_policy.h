/* haca_policy.h: load an exported HACA routing policy and route jobs with it from C.
 *
 * Build the library with `cargo build --release -p haca-policy-capi`; it is
 * target/release/libhaca_policy_c.{so,dylib,a}. A handle is not thread-safe: use one per thread
 * (loading is cheap) or serialize calls. See policy/FORMAT.md for the file format and
 * haca_policy::features for how node state becomes features.
 */
#ifndef HACA_POLICY_H
#define HACA_POLICY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct HacaPolicy HacaPolicy;

/* One inference node as the scheduler sees it. */
typedef struct {
    double speed;        /* work units per second per slot */
    double work_left;    /* estimated work units queued and running */
    double memory_gb;
    double load_s;       /* seconds to load the job's model here (0 if ready) */
    uint32_t slots;
    uint32_t busy_slots;
    uint32_t queue_len;
    uint8_t legal;       /* 1 if this node may take the job (up, capable, model fits) */
    uint8_t up;
    uint8_t tee;
    uint8_t zk;
    uint8_t model_ready; /* the job's model is cached or loading here */
} HacaNode;

/* The job being routed. */
typedef struct {
    double model_gb;
    double output_tokens_est;
    double est_work;         /* estimated work units, verification multiplier included */
    uint32_t model;
    uint32_t verification;   /* 0 vanilla, 1 TEE, 2 ZKML */
    uint32_t size_visibility;/* 0 exact, 1 estimate, 2 hidden */
    uint32_t input_tokens;
    uint32_t retries;
} HacaJob;

/* What a client routing for itself knows of a node beyond the shared scrape (an array parallel
 * to the nodes). Its own dispatches are also counted in the node's queue_len and work_left; its
 * answered requests are not taken off them. The last two fields were appended with feature
 * schema 3 (the struct grew from 16 to 32 bytes): rebuild callers against this header. */
typedef struct {
    double own_work;     /* estimated work units of this client's dispatches here since observed_at */
    uint32_t own_jobs;   /* this client's dispatches here since observed_at */
    uint32_t prefix_hit; /* leading blocks of the job's prefix cached here (0 without prefix caches) */
    double own_answered_work; /* estimated work units of its requests answered (or failed) here since observed_at */
    uint32_t own_answered;    /* its requests answered (or failed) here since observed_at */
} HacaNodeClient;

/* The deciding client, and the job's prefix. */
typedef struct {
    double share;           /* the client's share of the network's requests, in (0, 1]; 1 alone */
    double block_work;      /* work units of one prefix block's prefill (0 without prefix caches) */
    uint32_t prefix_blocks; /* blocks of the job's prefix (0 without prefix caches) */
    uint32_t clients;       /* clients routing in the network (1 alone; 0 reads as 1). Added with
                             * feature schema 4 in what was padding: the struct keeps its 24
                             * bytes, but zero it (or set it) in callers built before. */
} HacaClient;

/* Loads a policy file. Returns NULL on error; haca_policy_last_error() says why. */
HacaPolicy *haca_policy_load(const char *path);

/* Routes `job` over `num_nodes` nodes. `now` and `observed_at` are seconds (observed_at is the
 * time of the node state, equal to now when fresh). Returns the chosen node's index, always a
 * legal one, or -1 on error (no legal node, null pointer): see haca_policy_last_error(). */
int32_t haca_policy_route(HacaPolicy *policy, const HacaNode *nodes, size_t num_nodes,
                          const HacaJob *job, double now, double observed_at,
                          uint32_t jobs_in_system);

/* haca_policy_route for a client routing for itself: `node_client` has num_nodes entries
 * (parallel to `nodes`), `client` is the deciding client. The features of many-client policies
 * (own dispatches, prefix hits, the client's share) come from them; haca_policy_route is this
 * call with no own dispatches, no prefix caches and share 1. Returns as haca_policy_route, and
 * -1 for a share outside (0, 1]. */
int32_t haca_policy_route_client(HacaPolicy *policy, const HacaNode *nodes,
                                 const HacaNodeClient *node_client, size_t num_nodes,
                                 const HacaJob *job, const HacaClient *client, double now,
                                 double observed_at, uint32_t jobs_in_system);

/* temperature > 0: later route calls sample from softmax(logits / temperature), their draws
 * seeded with `seed` (same seed, same calls: same choices); 0: greedy, the default. Policies
 * trained for many clients route best sampled (their cards say so). Returns 0, or -1 for a NULL
 * handle or a negative or non-finite temperature. */
int haca_policy_set_sampling(HacaPolicy *policy, double temperature, uint64_t seed);

/* Copies the metadata value for `key` (any key of policy/FORMAT.md the file has:
 * "format_version", "scenario", "evaluation", "verdict", ...) into `buf` as a NUL-terminated
 * string, truncated to buf_len - 1 bytes if it is longer, and returns the value's full length in
 * bytes (without the NUL), like snprintf: call with buf_len 0 (buf may then be NULL) to size the
 * buffer, then again with a buffer of the returned length + 1. Returns (size_t)-1 when the key
 * is absent or `policy` or `key` is NULL: see haca_policy_last_error(). The values are those of
 * the loaded policy as this library writes them (keys outside FORMAT.md are not kept, and
 * "created_by" names this library). */
size_t haca_policy_metadata(const HacaPolicy *policy, const char *key, char *buf,
                            size_t buf_len);

/* Frees a handle (NULL is ignored). */
void haca_policy_free(HacaPolicy *policy);

/* The last error on this thread, or "" if none. Valid until the next call on this thread. */
const char *haca_policy_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
