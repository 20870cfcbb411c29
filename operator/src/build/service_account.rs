//! The ServiceAccount Agentry creates for an Agent, carrying `spec.serviceAccount.annotations`
//! (IRSA's `eks.amazonaws.com/role-arn`). None when the Agent names an existing account.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::child_meta;
use crate::validate::ValidatedAgent;

/// The account the pods run as: the existing one the Agent names, else one named after it.
pub fn service_account_name(agent: &ValidatedAgent) -> String {
    agent
        .spec
        .service_account
        .as_ref()
        .and_then(|sa| sa.name.clone())
        .unwrap_or_else(|| agent.name.clone())
}

/// The ServiceAccount to create, or `None` when the Agent uses an existing one.
pub fn service_account(agent: &ValidatedAgent) -> Option<ServiceAccount> {
    let spec = agent.spec.service_account.as_ref();
    if spec.is_some_and(|sa| sa.name.is_some()) {
        return None;
    }
    let mut metadata = child_meta(agent, agent.name.clone());
    metadata.annotations = spec.and_then(|sa| sa.annotations.clone());
    Some(ServiceAccount {
        metadata,
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{MINIMAL, WEATHER, validated};

    #[test]
    fn created_account_carries_the_irsa_annotation() {
        let sa = service_account(&validated(WEATHER)).unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("weather"));
        assert_eq!(
            sa.metadata.annotations.unwrap()["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::111122223333:role/agentry-weather"
        );
    }

    #[test]
    fn an_existing_account_is_used_and_none_is_created() {
        let a = validated(&format!(
            "{MINIMAL}  serviceAccount: {{name: bedrock-invoker}}\n"
        ));
        assert!(service_account(&a).is_none());
        assert_eq!(service_account_name(&a), "bedrock-invoker");
    }
}
