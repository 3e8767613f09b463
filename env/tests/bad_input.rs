//! Every bad input gives an error naming the file, the field and what is allowed.

mod common;

use std::path::Path;

use haca_env::{Scenario, ScenarioError};

fn small() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/haca-small.toml"))
        .unwrap()
}

/// Loads `text` from a temp file and returns the error message, which must name that file.
fn error_of(text: &str) -> String {
    let err = common::scenario_with_trace(
        text,
        Some("arrival_s,input_tokens,output_tokens\n0,1,1\n1,1,1\n"),
    )
    .expect_err("the scenario should be rejected");
    let msg = err.to_string();
    assert!(
        msg.contains("scenario.toml"),
        "the message names the file: {msg}"
    );
    msg
}

fn assert_error(text: &str, needles: &[&str]) {
    let msg = error_of(text);
    for n in needles {
        assert!(msg.contains(n), "expected `{n}` in: {msg}");
    }
}

#[test]
fn unknown_field_is_rejected_with_its_name_and_line() {
    assert_error(
        &small().replace("[sim]", "[sim]\nscrape_intervall_s = 1"),
        &["scrape_intervall_s", "unknown field", "line"],
    );
    assert_error(
        &small().replace("name = \"l40s\"", "name = \"l40s\"\ncolour = \"red\""),
        &["colour"],
    );
}

#[test]
fn negative_or_zero_numbers_are_rejected() {
    assert_error(
        &small().replace("speed = 0.4", "speed = -0.4"),
        &["node_classes[3].speed", "-0.4", "positive"],
    );
    assert_error(
        &small().replace("slots = 2\nmemory_gb = 48", "slots = 0\nmemory_gb = 48"),
        &["node_classes[3].slots", "at least one slot"],
    );
    assert_error(
        &small().replace("count = 4\nspeed = 0.4", "count = 0\nspeed = 0.4"),
        &["node_classes[3].count"],
    );
    assert_error(
        &small().replace("load = 0.8 ", "load = -1 "),
        &["arrivals.load", "positive"],
    );
    assert_error(
        &small().replace("load_gbps = 2.0", "load_gbps = 0"),
        &["hosting.load_gbps"],
    );
    assert_error(
        &small().replace("jobs = 2000 ", "jobs = 0 "),
        &["episode.jobs"],
    );
}

#[test]
fn a_model_that_fits_on_no_node_is_rejected() {
    assert_error(
        &small().replace("memory_gb = 140", "memory_gb = 400"),
        &[
            "models[3].memory_gb",
            "llama-3.1-70b",
            "fits on no node",
            "320 GB",
        ],
    );
}

#[test]
fn a_verification_mode_no_node_supports_is_rejected() {
    // ZKML requests, but no zk node and no provable model.
    assert_error(
        &small().replace("zkml = 0.0", "zkml = 0.1"),
        &[
            "workload.zkml",
            "no zk node",
            "set it to 0 or add such nodes",
        ],
    );
    // TEE requests with no TEE node.
    assert_error(
        &small().replace("tee = true", "tee = false"),
        &["workload.tee", "no TEE node"],
    );
}

#[test]
fn trace_errors_name_the_trace_and_the_line() {
    let trace_scn = |csv: &str| {
        let text = small()
            .replace(
                "process = \"poisson\"    # poisson | mmpp | diurnal | trace\nload = 0.8 ",
                "process = \"trace\"\npath = \"trace.csv\"\nload = 0.8 ",
            )
            .replace(
                "input_tokens = { dist = \"lognormal\", mean = 1000, cv = 1.2 }\n",
                "",
            )
            .replace(
                "output_tokens = { dist = \"lognormal\", mean = 200, cv = 1.0 }\n",
                "",
            )
            .replace("jobs = 2000 ", "# jobs ");
        common::scenario_with_trace(&text, Some(csv))
            .unwrap_err()
            .to_string()
    };
    let msg = trace_scn("arrival_s,input_tokens,output_tokens\n");
    assert!(
        msg.contains("arrivals.path") && msg.contains("trace.csv") && msg.contains("no requests"),
        "{msg}"
    );
    let msg = trace_scn("");
    assert!(msg.contains("empty"), "{msg}");
    let msg = trace_scn("arrival_s,input_tokens,output_tokens\n0,1,1\n2,x,1\n");
    assert!(
        msg.contains("trace.csv:3") && msg.contains("input_tokens"),
        "{msg}"
    );
    let msg = trace_scn("time,input_tokens,output_tokens\n0,1,1\n");
    assert!(msg.contains("header"), "{msg}");

    let missing = small().replace(
        "process = \"poisson\"    # poisson | mmpp | diurnal | trace",
        "process = \"trace\"\npath = \"nowhere.csv\"",
    );
    let msg = error_of(&missing);
    assert!(
        msg.contains("nowhere.csv") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn episode_longer_than_the_trace_is_rejected() {
    let text = small()
        .replace(
            "process = \"poisson\"    # poisson | mmpp | diurnal | trace",
            "process = \"trace\"\npath = \"trace.csv\"",
        )
        .replace(
            "input_tokens = { dist = \"lognormal\", mean = 1000, cv = 1.2 }\n",
            "",
        )
        .replace(
            "output_tokens = { dist = \"lognormal\", mean = 200, cv = 1.0 }\n",
            "",
        );
    assert_error(&text, &["episode.jobs", "2000", "2 requests"]);
}

#[test]
fn enumerations_list_what_is_allowed() {
    assert_error(
        &small().replace("process = \"poisson\"", "process = \"poison\""),
        &["arrivals.process", "\"poisson\", \"mmpp\""],
    );
    assert_error(
        &small().replace(
            "size_visibility = \"hidden\"",
            "size_visibility = \"partial\"",
        ),
        &["sim.size_visibility", "\"exact\""],
    );
    assert_error(
        &small().replace("initial_cache = \"popular\"", "initial_cache = \"warm\""),
        &["sim.initial_cache"],
    );
    assert_error(
        &small().replace(
            "dist = \"lognormal\", mean = 1000",
            "dist = \"gamma\", mean = 1000",
        ),
        &["workload.input_tokens.dist", "\"pareto\""],
    );
}

#[test]
fn fields_that_do_not_apply_are_rejected() {
    assert_error(
        &small().replace("mean = 1000, cv = 1.2", "mean = 1000, cv = 1.2, shape = 2"),
        &["workload.input_tokens.shape", "lognormal"],
    );
    assert_error(
        &small().replace("load = 0.8 ", "load = 0.8\nperiod_s = 10 "),
        &["arrivals.period_s", "poisson"],
    );
    assert_error(
        &small().replace("load = 0.8 ", "load = 0.8\nrate_per_s = 3 "),
        &["exactly one of"],
    );
    assert_error(
        &small().replace("mean = 1000, cv = 1.2", "mean = 1000"),
        &["workload.input_tokens.cv", "required"],
    );
}

#[test]
fn other_consistency_errors() {
    assert_error(
        &small().replace("zipf = 1.0 ", "popularity = [1, 2] "),
        &["workload.popularity", "2 weights for 4 models"],
    );
    assert_error(
        &small().replace("name = \"mistral-7b\"", "name = \"llama-3.1-8b\""),
        &["models[1].name", "twice"],
    );
    assert_error(
        &small().replace("# max_nodes = 16", "max_nodes = 4"),
        &["episode.max_nodes", "12 nodes"],
    );
    assert_error(
        &small().replace("# mtbf_s = 3600", "mtbf_s = 3600"),
        &["node_classes[0].mttr_s", "required"],
    );
    assert_error(
        &small().replace(
            "[arrivals]\nprocess = \"poisson\"    # poisson | mmpp | diurnal | trace\nload = 0.8",
            "",
        ),
        &["arrivals", "missing"],
    );
}

#[test]
fn toml_syntax_errors_name_the_file_and_line() {
    assert_error(&small().replace("[sim]", "[sim"), &["line"]);
}

#[test]
fn a_missing_scenario_file_is_an_io_error() {
    let err = Scenario::load("/no/such/scenario.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("/no/such/scenario.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn bad_clients_registry_prefix_and_settlement_tables_say_which_field_and_why() {
    let with = |extra: &str| format!("{}\n{extra}\n", small());
    let cases: &[(&str, &[&str])] = &[
        (
            "[clients]\ncount = 0",
            &["clients.count", "is 0", "1 to 10000"],
        ),
        ("[clients]\ncount = 20000", &["clients.count", "1 to 10000"]),
        (
            "[clients]\ncount = 5\ndemand = \"pareto\"",
            &["clients.demand", "\"uniform\" or \"zipf\""],
        ),
        (
            "[clients]\ncount = 5\nzipf = 1.2",
            &["clients.zipf", "demand = \"zipf\""],
        ),
        (
            "[clients]\ncount = 5\ndemand = \"zipf\"\nzipf = -1",
            &["clients.zipf", "[0, 10]"],
        ),
        (
            "[registry]\nheartbeat_s = 900\nmax_age_s = 300",
            &["registry.max_age_s", "at least heartbeat_s"],
        ),
        (
            "[registry]\nfail_timeout_s = 0",
            &["registry.fail_timeout_s", "positive"],
        ),
        (
            "[prefix]\nblock_tokens = 0",
            &["prefix.block_tokens", "1 to 1048576"],
        ),
        (
            "[prefix]\ncache_blocks = 99999999",
            &["prefix.cache_blocks", "at most 4194304"],
        ),
    ];
    for (extra, needles) in cases {
        assert_error(&with(extra), needles);
    }
    assert_error(
        &small().replace("name = \"l40s\"", "name = \"l40s\"\nkv_cache_blocks = 10"),
        &[
            "node_classes[3].kv_cache_blocks",
            "without a [prefix] table",
        ],
    );
    assert_error(
        &small().replace("settle_s = 2.0", "settle_s = 2.0\nsettle_timeout_s = 5"),
        &[
            "verification.settle_timeout_s",
            "without verification.settle_batch",
        ],
    );
    assert_error(
        &small().replace("settle_s = 2.0", "settle_s = 2.0\nsettle_batch = 0"),
        &["verification.settle_batch", "1 to 1000000"],
    );
    assert_error(
        &with("[randomize]\nclients = [0.5, 10]"),
        &["randomize.clients", "1..=10000"],
    );
}
