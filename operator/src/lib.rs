//! The Agentry operator: reconciles Agents into running, discoverable workloads.
