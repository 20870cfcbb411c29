//! The Agent's Service: ClusterIP, port 80 named `http`. Its DNS name is the Agent's identity.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, labels};
use crate::validate::ValidatedAgent;

/// The Service in front of `agent`'s runtime pods.
pub fn service(agent: &ValidatedAgent) -> Service {
    Service {
        metadata: child_meta(agent, agent.name.clone()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels::selector(&agent.name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{WEATHER, validated};

    #[test]
    fn service_maps_port_80_named_http_to_the_runtime_port_by_name() {
        let s = service(&validated(WEATHER));
        assert_eq!(s.metadata.name.as_deref(), Some("weather"));
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("http"), 80));
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        assert_eq!(spec.selector.unwrap(), labels::selector("weather"));
    }
}
