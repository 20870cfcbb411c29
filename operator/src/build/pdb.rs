//! A PodDisruptionBudget for Agents with more than one replica, so node drains keep the Agent
//! serving: at most one runtime pod is evicted at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, labels};
use crate::validate::ValidatedAgent;

/// The budget, or `None` at one replica or fewer (where it could only block drains).
pub fn pod_disruption_budget(agent: &ValidatedAgent) -> Option<PodDisruptionBudget> {
    (agent.spec.replicas > 1).then(|| PodDisruptionBudget {
        metadata: child_meta(agent, agent.name.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&agent.name)),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{MINIMAL, WEATHER, validated};

    #[test]
    fn two_replicas_get_a_budget_of_one_unavailable_pod() {
        let pdb = pod_disruption_budget(&validated(WEATHER)).unwrap();
        assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(1)));
    }

    #[test]
    fn one_replica_gets_no_budget() {
        assert!(pod_disruption_budget(&validated(MINIMAL)).is_none());
    }
}
