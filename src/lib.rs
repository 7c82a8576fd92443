//! flannel-gen: flannel-style container networking as a compiler.
//!
//! ```text
//! topology.yaml --parse--> TopologyDoc --validate--> Cluster --allocate(lock)--> NodePlan per node
//!   topology::parse          topology::validate        alloc + lock               plan
//! ```
//!
//! * [`topology`]: the source language (schema version 1), parsed with source
//!   locations so every error names `FILE:LINE:COL` and the field.
//! * [`lock`], [`alloc`]: stable subnet and VTEP MAC leases per address
//!   family, kept in a lock file beside the topology so adding or removing
//!   nodes never moves another node.
//! * [`plan`]: the IR and the one trusted contract. A `NodePlan` is built
//!   from a validated cluster or read from plan.json by one validating
//!   reader; kernel objects are derived from it in one place.
//! * [`render`]: back end 1, plan -> files (minijinja templates in
//!   `templates/`, embedded), staged and renamed into `--out`.
//! * [`apply`]: back end 2, plan -> kernel through netlink: dump, reconcile
//!   (pure), then only the changes, stage by stage.
//! * [`diff`]: back end 3, plan vs plan: a semantic summary per node and the
//!   unified diff of every rendered file.
//! * [`registry`]: flanneld's lease registry (etcd keys, Node annotations):
//!   `import` reads a running cluster into a topology, `publish` writes
//!   flannel-gen nodes back in flanneld's formats.
//! * [`udp`]: the udp backend's data path (`flannel-gen udp`), on the TUN
//!   device [`tun`] makes.
//! * [`cloud`]: the cluster side of the aws-vpc and gce backends (routes in
//!   the cloud: Terraform JSON, scripts, `cloud apply` through the EC2 API).
//! * [`wireguard`]: WireGuard keys (`wireguard keygen`).
//! * [`compile`]: the front half of the pipeline every command shares.
//! * [`cli`], [`commands`]: one module per subcommand; exit codes 0 ok,
//!   1 changes, 2 bad input, 3 system.
//!
//! Support: [`diag`] (located diagnostics), [`input`] (reading inputs), [`yaml`]
//! (YAML documents into typed values with located errors),
//! [`netaddr`] (address rules), [`mac`], [`textdiff`], [`fsutil`], [`synth`], [`words`].

pub mod alloc;
pub mod apply;
pub mod cli;
pub mod cloud;
pub mod commands;
pub mod compile;
pub mod diag;
pub mod diff;
pub mod doctor;
pub mod error;
pub mod fsutil;
pub mod graph;
pub mod health;
pub mod input;
pub mod json_path;
pub mod lock;
pub mod mac;
pub mod netaddr;
pub mod plan;
pub mod registry;
pub mod render;
pub mod synth;
pub mod textdiff;
pub mod topology;
pub mod traffic;
pub mod tun;
#[cfg(feature = "udp")]
pub mod udp;
pub mod wireguard;
pub mod words;
pub mod yaml;
