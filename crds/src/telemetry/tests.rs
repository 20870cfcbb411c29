use std::collections::HashMap;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn no_endpoint_means_no_tracing() {
    assert!(!enabled(vars(&[])).unwrap());
    assert!(!enabled(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])).unwrap());
}

#[test]
fn either_endpoint_turns_tracing_on() {
    assert!(enabled(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])).unwrap());
    assert!(
        enabled(vars(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )]))
        .unwrap()
    );
}

#[test]
fn the_sdk_switch_and_exporter_none_turn_it_off() {
    let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
    assert!(!enabled(vars(&[on, ("OTEL_SDK_DISABLED", "TRUE")])).unwrap());
    assert!(!enabled(vars(&[on, ("OTEL_TRACES_EXPORTER", "none")])).unwrap());
    assert!(enabled(vars(&[on, ("OTEL_SDK_DISABLED", "false")])).unwrap());
}

#[test]
fn grpc_is_refused_naming_the_variable_and_the_fix() {
    let e = enabled(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""), "{e}");
    assert!(e.contains("http/protobuf"), "{e}");
    let e = enabled(vars(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")]))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="), "{e}");
}

#[test]
fn unknown_samplers_and_bad_ratios_are_refused() {
    let e = enabled(vars(&[("OTEL_TRACES_SAMPLER", "xray")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("parentbased_traceidratio"), "{e}");
    for arg in ["", "1.5", "half"] {
        let e = enabled(vars(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", arg),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("OTEL_TRACES_SAMPLER_ARG="), "{e}");
    }
    assert!(
        enabled(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]))
        .unwrap()
    );
}

#[test]
fn other_exporters_are_refused() {
    let e = enabled(vars(&[("OTEL_TRACES_EXPORTER", "zipkin")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("otlp or none"), "{e}");
}

#[test]
fn content_is_captured_only_when_asked() {
    assert!(!capture_content(vars(&[])));
    assert!(!capture_content(vars(&[(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "1"
    )])));
    assert!(capture_content(vars(&[(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "True"
    )])));
}

#[test]
fn the_export_timeout_prefers_the_traces_variable() {
    use std::time::Duration;
    assert_eq!(export::timeout(vars(&[])), Duration::from_secs(10));
    assert_eq!(
        export::timeout(vars(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250")
        ])),
        Duration::from_millis(250)
    );
}

#[test]
fn a_traceparent_goes_out_as_it_came_in() {
    let mut incoming = http::HeaderMap::new();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    incoming.insert("traceparent", tp.parse().unwrap());
    let cx = propagation::extract(&incoming);
    let out = propagation::headers(&cx);
    assert_eq!(out.get("traceparent").unwrap(), tp);
}

#[test]
fn no_or_bad_traceparent_propagates_nothing() {
    let cx = propagation::extract(&http::HeaderMap::new());
    assert!(propagation::headers(&cx).is_empty());
    let mut bad = http::HeaderMap::new();
    bad.insert("traceparent", "00-zz-yy-01".parse().unwrap());
    assert!(propagation::headers(&propagation::extract(&bad)).is_empty());
}

#[test]
fn values_with_spaces_are_refused_not_trimmed_as_the_sdk_would_not() {
    let e = enabled(vars(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", " 0.1"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("OTEL_TRACES_SAMPLER_ARG"), "{e}");
    assert!(enabled(vars(&[("OTEL_TRACES_SAMPLER", " always_off")])).is_err());
}

#[test]
fn certificates_and_other_propagators_are_refused() {
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/key.pem"),
        ("OTEL_PROPAGATORS", "b3"),
    ] {
        let e = enabled(vars(&[(var, value)])).unwrap_err().to_string();
        assert!(e.starts_with(var), "{e}");
    }
    assert!(enabled(vars(&[("OTEL_PROPAGATORS", "tracecontext")])).is_ok());
}

#[test]
fn headers_are_key_value_pairs_with_percent_escapes() {
    let h = export::headers("api-key=s%3Dcr%20t, x-team=ops").unwrap();
    assert_eq!(h["api-key"], "s=cr t");
    assert_eq!(h["x-team"], "ops");
    let e = export::headers("novalue").unwrap_err().to_string();
    assert!(e.contains("no ="), "{e}");
    assert!(export::headers("k=%zz").is_err());
    assert!(export::headers("bad key=v").is_err());
}

#[test]
fn samplers_are_built_from_the_checked_values() {
    use opentelemetry_sdk::trace::Sampler;
    assert!(matches!(
        sampler(vars(&[("OTEL_TRACES_SAMPLER", "always_off")])),
        Sampler::AlwaysOff
    ));
    assert!(matches!(
        sampler(vars(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25")
        ])),
        Sampler::TraceIdRatioBased(r) if r == 0.25
    ));
    assert!(matches!(sampler(vars(&[])), Sampler::ParentBased(_)));
}
