//! Prints the Agent CustomResourceDefinition as YAML.

use std::process::ExitCode;

fn main() -> ExitCode {
    match agentry_crds::crd::agent_crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("crdgen: cannot serialize the Agent CRD: {err}");
            ExitCode::FAILURE
        }
    }
}
