/* Routes jobs through the C ABI: run by tests/c_abi.rs with a policy file as argv[1]. */
#include <stdio.h>
#include <string.h>
#include "haca_policy.h"

static HacaNode node(double speed, uint32_t queue, uint8_t legal) {
    HacaNode n;
    memset(&n, 0, sizeof n);
    n.speed = speed;
    n.work_left = queue * 2.0;
    n.memory_gb = 80.0;
    n.slots = 2;
    n.busy_slots = queue > 0 ? 2 : 0;
    n.queue_len = queue;
    n.legal = legal;
    n.up = 1;
    n.model_ready = 1;
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: route POLICY\n");
        return 2;
    }
    if (haca_policy_load("/no/such/policy.safetensors") != NULL ||
        strstr(haca_policy_last_error(), "/no/such/policy.safetensors") == NULL) {
        fprintf(stderr, "a missing file must fail with its name, got: %s\n", haca_policy_last_error());
        return 1;
    }
    HacaPolicy *p = haca_policy_load(argv[1]);
    if (p == NULL) {
        fprintf(stderr, "load failed: %s\n", haca_policy_last_error());
        return 1;
    }
    /* Metadata, snprintf-style: size it, read it, truncate it; an absent key is an error. */
    char buf[16] = "";
    size_t len = haca_policy_metadata(p, "format_version", NULL, 0);
    if (len != 1 || haca_policy_metadata(p, "format_version", buf, sizeof buf) != 1 ||
        strcmp(buf, "2") != 0) {
        fprintf(stderr, "format_version: length %zu, value \"%s\"\n", len, buf);
        return 1;
    }
    size_t full = haca_policy_metadata(p, "format", buf, 5);
    if (full != strlen("haca-policy") || strcmp(buf, "haca") != 0) {
        fprintf(stderr, "format truncated to 4 bytes: %zu, \"%s\"\n", full, buf);
        return 1;
    }
    if (haca_policy_metadata(p, "no_such_key", buf, sizeof buf) != (size_t)-1 ||
        strstr(haca_policy_last_error(), "no_such_key") == NULL) {
        fprintf(stderr, "an absent key must fail with its name, got: %s\n", haca_policy_last_error());
        return 1;
    }
    if (haca_policy_metadata(NULL, "format", buf, sizeof buf) != (size_t)-1 ||
        haca_policy_metadata(p, NULL, buf, sizeof buf) != (size_t)-1) {
        fprintf(stderr, "NULL arguments must fail\n");
        return 1;
    }
    char verdict[1024] = "";
    size_t vlen = haca_policy_metadata(p, "verdict", verdict, sizeof verdict);

    HacaJob job;
    memset(&job, 0, sizeof job);
    job.est_work = 2.0;
    job.input_tokens = 800;
    job.output_tokens_est = 150.0;
    job.size_visibility = 2;

    HacaNode nodes[4] = {node(1.0, 3, 0), node(0.5, 0, 0), node(2.0, 1, 1), node(1.5, 0, 0)};
    int32_t only = haca_policy_route(p, nodes, 4, &job, 10.0, 10.0, 7);
    if (only != 2) {
        fprintf(stderr, "only node 2 is legal, got %d (%s)\n", only, haca_policy_last_error());
        return 1;
    }
    for (int i = 0; i < 4; i++) nodes[i].legal = 1;
    int32_t any = haca_policy_route(p, nodes, 4, &job, 11.0, 11.0, 7);
    if (any < 0 || any > 3) {
        fprintf(stderr, "route returned %d\n", any);
        return 1;
    }
    /* A client alone (share 1, no own dispatches, no prefix caches) routes as above. */
    HacaNodeClient own[4];
    memset(own, 0, sizeof own);
    HacaClient me = {1.0, 0.0, 0};
    int32_t alone = haca_policy_route_client(p, nodes, own, 4, &job, &me, 11.0, 11.0, 7);
    if (alone != any) {
        fprintf(stderr, "route_client alone gave %d, route %d (%s)\n", alone, any, haca_policy_last_error());
        return 1;
    }
    own[any].own_jobs = 2;
    own[any].own_work = 4.0;
    me.share = 0.1;
    if (haca_policy_set_sampling(p, 1.0, 42) != 0) {
        fprintf(stderr, "set_sampling: %s\n", haca_policy_last_error());
        return 1;
    }
    int32_t sampled = haca_policy_route_client(p, nodes, own, 4, &job, &me, 11.0, 11.0, 7);
    me.share = 2.0;
    if (sampled < 0 || sampled > 3 || haca_policy_set_sampling(p, -1.0, 0) != -1 ||
        haca_policy_route_client(p, nodes, own, 4, &job, &me, 11.0, 11.0, 7) != -1 ||
        strstr(haca_policy_last_error(), "client share 2") == NULL) {
        fprintf(stderr, "sampled %d; a bad temperature and share must fail: %s\n", sampled,
                haca_policy_last_error());
        return 1;
    }
    for (int i = 0; i < 4; i++) nodes[i].legal = 0;
    if (haca_policy_route(p, nodes, 4, &job, 12.0, 12.0, 7) != -1 ||
        strstr(haca_policy_last_error(), "no node is legal") == NULL) {
        fprintf(stderr, "no legal node must be an error\n");
        return 1;
    }
    haca_policy_free(p);
    printf("c abi: routed to node %d of 4, then to node %d (as a client alone: %d, sampled as a "
           "client: %d); errors reported\n", only, any, alone, sampled);
    if (vlen == (size_t)-1) {
        printf("c abi: format_version 2, no verdict recorded\n");
    } else {
        printf("c abi: format_version 2, verdict (%zu bytes): %s\n", vlen, verdict);
    }
    return 0;
}
