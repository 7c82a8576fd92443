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

// The modules other crates reach (tests, benches, fuzz targets). Under
// `--cfg flannel_gen_audit` they are private too and only `main` is public,
// so rustc's dead-code lint sees the crate as the binary uses it (.ci/run).
macro_rules! api_modules {
    ($($(#[$attr:meta])* $m:ident),* $(,)?) => {$(
        $(#[$attr])* #[cfg(not(flannel_gen_audit))] pub mod $m;
        $(#[$attr])* #[cfg(flannel_gen_audit)] mod $m;
    )*};
}
api_modules!(
    alloc,
    apply,
    cli,
    cloud,
    compile,
    input,
    plan,
    registry,
    synth,
    topology,
    #[cfg(feature = "udp")]
    udp,
    wireguard,
    yaml,
);
#[cfg(flannel_gen_audit)]
pub use cli::main;
pub(crate) mod commands;
pub(crate) mod diag;
pub(crate) mod diff;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod fsutil;
pub(crate) mod graph;
pub(crate) mod health;
pub(crate) mod json_path;
pub(crate) mod lock;
pub(crate) mod mac;
pub(crate) mod netaddr;
pub(crate) mod render;
pub(crate) mod textdiff;
pub(crate) mod traffic;
pub(crate) mod tun;
pub(crate) mod words;
