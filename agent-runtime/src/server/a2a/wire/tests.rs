//! Tests of the parent module.

use super::*;
use crate::server::a2a::store::{Message, Role};

fn done() -> Task {
    Task {
        id: "T".into(),
        context_id: "C".into(),
        state: State::Completed,
        timestamp: "2026-12-01T14:50:08.484886Z".into(),
        history: vec![Message {
            message_id: "m1".into(),
            role: Role::User,
            parts: vec!["hi".into()],
        }],
        answer: Some(("A".into(), "echo: hi".into())),
        status_message: None,
    }
}

#[test]
fn a_1_0_send_result_is_the_wrapped_task_without_kinds_as_the_official_server_sends_it() {
    assert_eq!(
        json!(send_result(Version::V1, &done(), None)),
        json!({"task": {"id": "T", "contextId": "C",
                "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "2026-12-01T14:50:08.484886Z"},
                "artifacts": [{"artifactId": "A", "name": "answer", "parts": [{"text": "echo: hi"}]}],
                "history": [{"messageId": "m1", "contextId": "C", "taskId": "T", "role": "ROLE_USER",
                             "parts": [{"text": "hi"}]}]}})
    );
}

#[test]
fn a_0_3_send_result_is_the_bare_task_with_kinds_and_lower_case_names() {
    assert_eq!(
        json!(send_result(Version::V03, &done(), None)),
        json!({"kind": "task", "id": "T", "contextId": "C",
                "status": {"state": "completed", "timestamp": "2026-12-01T14:50:08.484886Z"},
                "artifacts": [{"artifactId": "A", "name": "answer", "parts": [{"kind": "text", "text": "echo: hi"}]}],
                "history": [{"kind": "message", "messageId": "m1", "contextId": "C", "taskId": "T",
                             "role": "user", "parts": [{"kind": "text", "text": "hi"}]}]})
    );
}

#[test]
fn history_length_zero_drops_the_history_in_1_0_and_keeps_it_in_0_3() {
    assert!(
        json!(task(Version::V1, &done(), Some(0)))
            .get("history")
            .is_none()
    );
    assert!(json!(task(Version::V03, &done(), Some(0)))["history"].is_array());
    assert!(json!(task(Version::V1, &done(), Some(5)))["history"].is_array());
}

#[test]
fn only_the_last_0_3_status_update_is_final() {
    let mut t = done();
    assert_eq!(status_update(Version::V03, &t)["final"], true);
    t.state = State::Working;
    assert_eq!(status_update(Version::V03, &t)["final"], false);
    assert!(
        status_update(Version::V1, &t)["statusUpdate"]
            .get("final")
            .is_none()
    );
}

fn params(message: Value, configuration: Value) -> Value {
    json!({"message": message, "configuration": configuration})
}

#[test]
fn text_parts_are_read_in_each_versions_spelling_and_other_parts_refused_as_content_type() {
    let m1 =
        json!({"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a"}, {"text": "b"}]});
    let p = send_params(Version::V1, &params(m1, json!({}))).unwrap();
    assert_eq!(
        (p.parts, p.blocking, p.context_id),
        (vec!["a".into(), "b".into()], true, None)
    );
    let m03 = json!({"kind": "message", "messageId": "m", "role": "user", "contextId": "ctx",
                         "parts": [{"kind": "text", "text": "a"}]});
    let p = send_params(Version::V03, &params(m03, json!({"blocking": false}))).unwrap();
    assert_eq!((p.blocking, p.context_id.as_deref()), (false, Some("ctx")));
    let file =
        json!({"messageId": "m", "role": "ROLE_USER", "parts": [{"url": "https://x/y.png"}]});
    assert_eq!(
        send_params(Version::V1, &params(file, json!({})))
            .unwrap_err()
            .code,
        -32005
    );
    let wrong_role = json!({"messageId": "m", "role": "user", "parts": [{"text": "a"}]});
    assert_eq!(
        send_params(Version::V1, &params(wrong_role, json!({})))
            .unwrap_err()
            .code,
        -32602
    );
}

#[test]
fn a_task_id_push_config_or_non_text_output_mode_is_refused_rather_than_ignored() {
    let m = || json!({"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a"}]});
    let mut with_task = m();
    with_task["taskId"] = json!("T");
    assert_eq!(
        send_params(Version::V1, &params(with_task, json!({})))
            .unwrap_err()
            .code,
        -32004
    );
    let push = json!({"taskPushNotificationConfig": {"url": "https://hook"}});
    assert_eq!(
        send_params(Version::V1, &params(m(), push))
            .unwrap_err()
            .code,
        -32003
    );
    let modes = json!({"acceptedOutputModes": ["application/json"]});
    assert_eq!(
        send_params(Version::V1, &params(m(), modes))
            .unwrap_err()
            .code,
        -32005
    );
    let immediately = json!({"returnImmediately": true});
    assert!(
        !send_params(Version::V1, &params(m(), immediately))
            .unwrap()
            .blocking
    );
}

#[test]
fn method_names_pick_the_version_and_a2a_only_errors_carry_error_info_in_1_0() {
    assert_eq!(
        dispatch("SendMessage"),
        Dispatch::Serve(Version::V1, Method::Send)
    );
    assert_eq!(
        dispatch("tasks/cancel"),
        Dispatch::Serve(Version::V03, Method::Cancel)
    );
    assert_eq!(dispatch("ListTasks"), Dispatch::Unsupported);
    assert_eq!(
        dispatch("CreateTaskPushNotificationConfig"),
        Dispatch::PushNotifications
    );
    assert_eq!(dispatch("tasks/list"), Dispatch::Unknown);
    let e = RpcError::task_not_found("T");
    assert_eq!(
        e.to_json(Version::V1)["data"][0]["reason"],
        "TASK_NOT_FOUND"
    );
    assert!(e.to_json(Version::V03).get("data").is_none());
    assert!(
        RpcError::method_not_found("x")
            .to_json(Version::V1)
            .get("data")
            .is_none()
    );
}
