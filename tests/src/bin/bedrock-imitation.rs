//! The Bedrock imitation ([`agentry_tests::bedrock::FakeBedrock`]) as a process of its own, for
//! suites whose runtimes cannot reach the test process (`tests/tests/cluster_dns.rs` runs it in
//! a network namespace).
//!
//! `bedrock-imitation --listen ADDR --script JSON`
//!
//! - `--listen`: where to serve, e.g. `198.18.0.1:0` (port 0 picks a free one).
//! - `--script`: the model's turns in order, a JSON array of Converse content blocks, one per
//!   turn: `{"text": "..."}` ends the turn, `{"toolUse": {"toolUseId", "name", "input"}}` asks
//!   for that tool. A call beyond the script gets an `InternalServerException`.
//!
//! It prints, each on one line: `listening on ADDR`, `runtime env {JSON}` (the environment an
//! `agentry-runtime` needs to talk to it: endpoint override, test credentials, region), then
//! `model call N: {JSON}` for every model call, with the model id, whether it was a stream, the
//! system prompt and the last message of the conversation.
//!
//! `FakeBedrock` listens on loopback only, so connections to `--listen` are relayed to it.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use serde_json::{Value, json};

const USAGE: &str = "usage: bedrock-imitation --listen ADDR --script JSON";

/// One script step from a Converse content block.
fn turn(block: &Value) -> Result<Script, String> {
    if let Some(text) = block.get("text").and_then(Value::as_str) {
        return Ok(Script::Turn(Turn::text(text)));
    }
    let tool = block
        .get("toolUse")
        .ok_or_else(|| format!("a script step is a text or toolUse block, not {block}"))?;
    let field = |name: &str| {
        tool.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("toolUse.{name} must be a string in {block}"))
    };
    let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
    Ok(Script::Turn(Turn::tools(&[(
        field("toolUseId")?,
        field("name")?,
        input,
    )])))
}

fn parse_args() -> Result<(SocketAddr, Vec<Script>), String> {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut script) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                );
            }
            "--script" => {
                let steps: Vec<Value> =
                    serde_json::from_str(&value).map_err(|e| format!("--script: {e}"))?;
                script = Some(steps.iter().map(turn).collect::<Result<_, _>>()?);
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((
        listen.ok_or("--listen is required")?,
        script.ok_or("--script is required")?,
    ))
}

/// Copies bytes both ways between `inbound` and the imitation until both sides are done.
fn relay(inbound: TcpStream, target: SocketAddr) -> io::Result<()> {
    let outbound = TcpStream::connect(target)?;
    let (mut from_client, mut to_server) = (inbound.try_clone()?, outbound.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (outbound, inbound);
    let _ = io::copy(&mut from_server, &mut to_client);
    let _ = to_client.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let (listen, script) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bedrock-imitation: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeBedrock::start().await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bedrock-imitation: starting the imitation: {e}");
            return ExitCode::from(1);
        }
    };
    fake.push(script);
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bedrock-imitation: listening on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(listen);
    let target = fake.addr;
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            std::thread::spawn(move || relay(inbound, target));
        }
    });

    let env: serde_json::Map<String, Value> = fake
        .process_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .chain([(
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME".to_string(),
            Value::String(format!("http://{bound}")),
        )])
        .collect();
    println!("listening on {bound}");
    println!("runtime env {}", Value::Object(env));

    // FakeBedrock records each request; report them as they arrive.
    let mut reported = 0;
    loop {
        let captured = fake.captured();
        for (n, c) in captured.iter().enumerate().skip(reported) {
            let call = json!({
                "modelId": c.model_id,
                "stream": c.stream,
                "system": c.body["system"],
                "lastMessage": c.body["messages"].as_array().and_then(|m| m.last()),
            });
            println!("model call {}: {call}", n + 1);
        }
        reported = captured.len();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
