//! The cluster side of the cloud route backends (aws-vpc, gce): one route
//! per node subnet in the cloud's routing, to that node's instance. Derived
//! here from the cluster and its leases, in one place, for every back end:
//! Terraform JSON ([`terraform`]), shell scripts ([`script`]) and the EC2
//! reconciler (`aws`, `flannel-gen cloud apply`).
//!
//! Facts from flanneld (backend/awsvpc/awsvpc.go and backend/gce/api.go in
//! flannel v0.19, the last release that has them): aws-vpc routes the node's
//! lease subnet (`DestinationCidrBlock`) to the instance's network interface
//! in each route table (flannel's `RouteTableID`, one or a list; without it
//! the route table associated with the interface's subnet, else the VPC's
//! main one) and turns the interface's source/dest check off; gce inserts a
//! route named `flannel-<subnet, "." and "/" as "-">` with `destRange` the
//! subnet, `nextHopInstance` the node's instance and priority 1000.

#[cfg(feature = "cloud")]
pub mod aws;
#[cfg(feature = "cloud")]
pub mod ec2;
pub mod script;
pub mod terraform;

use ipnet::Ipv4Net;

use crate::lock::Leases;
use crate::netaddr::Family;
use crate::topology::{CloudBackend, Cluster, NodeCloud};

/// flanneld's gce route priority (backend/gce/api.go `insertRoute`).
pub const GCE_PRIORITY: u32 = 1000;

/// The routes a cloud cluster needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudPlan {
    Aws(AwsPlan),
    Gce(GcePlan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsPlan {
    pub cluster: String,
    /// The pod network: routes inside it are flannel-gen's (the owner rule).
    pub network: Ipv4Net,
    /// Empty: each node's subnet's route table, found per node.
    pub route_tables: Vec<String>,
    pub routes: Vec<AwsRoute>,
}

/// A node's subnet, routed to its instance (its primary network interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRoute {
    pub node: String,
    pub dst: Ipv4Net,
    pub instance_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcePlan {
    pub cluster: String,
    pub project: String,
    /// The GCE network the routes belong to.
    pub network_name: String,
    pub network: Ipv4Net,
    pub routes: Vec<GceRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GceRoute {
    /// flanneld's route name for the subnet.
    pub name: String,
    pub node: String,
    pub dest_range: Ipv4Net,
    pub instance: String,
    pub zone: String,
}

/// flanneld's gce route name: `flannel-10-244-1-0-24` for 10.244.1.0/24.
pub fn gce_route_name(subnet: Ipv4Net) -> String {
    format!("flannel-{}", subnet.to_string().replace(['.', '/'], "-"))
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("backend `{0}` has no cloud routes; `cloud` reads aws-vpc and gce topologies")]
    NotCloud(String),
    #[error("node `{0}` has no IPv4 lease in the lock; run `flannel-gen lock` first")]
    NoLease(String),
}

/// The cluster's cloud routes, sorted by subnet.
pub fn plan(cluster: &Cluster, leases: &Leases) -> Result<CloudPlan, CloudError> {
    let not_cloud = || CloudError::NotCloud(cluster.backend.kind.as_str().to_string());
    let cloud = cluster.backend.cloud.as_ref().ok_or_else(not_cloud)?;
    let network = cluster.pools.get(Family::V4).and_then(|p| crate::netaddr::v4(p.network)).ok_or_else(not_cloud)?;
    let mut subnets = Vec::with_capacity(cluster.nodes.len());
    for n in &cluster.nodes {
        let subnet = leases
            .get(&n.name)
            .and_then(|l| l.get(Family::V4))
            .and_then(|l| crate::netaddr::v4(l.subnet))
            .ok_or_else(|| CloudError::NoLease(n.name.clone()))?;
        subnets.push((subnet, n.name.clone(), n.cloud.clone().ok_or_else(not_cloud)?));
    }
    subnets.sort_by_key(|(s, ..)| *s);
    let cluster_name = cluster.name.clone();
    Ok(match cloud {
        CloudBackend::Aws { route_tables } => CloudPlan::Aws(AwsPlan {
            cluster: cluster_name,
            network,
            route_tables: route_tables.clone(),
            routes: subnets
                .into_iter()
                .filter_map(|(dst, node, c)| match c {
                    NodeCloud::Aws { instance_id } => Some(AwsRoute { node, dst, instance_id }),
                    NodeCloud::Gce { .. } => None,
                })
                .collect(),
        }),
        CloudBackend::Gce { project, network: network_name } => CloudPlan::Gce(GcePlan {
            cluster: cluster_name,
            project: project.clone(),
            network_name: network_name.clone(),
            network,
            routes: subnets
                .into_iter()
                .filter_map(|(dest_range, node, c)| match c {
                    NodeCloud::Gce { instance, zone } => {
                        Some(GceRoute { name: gce_route_name(dest_range), node, dest_range, instance, zone })
                    }
                    NodeCloud::Aws { .. } => None,
                })
                .collect(),
        }),
    })
}

/// Whether a cloud route to `dst` is flannel-gen's to replace or delete:
/// its destination lies inside the cluster network.
pub fn owned(network: Ipv4Net, dst: Ipv4Net) -> bool {
    network.contains(&dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gce_route_names_are_flanneld_s() {
        let s: Ipv4Net = "10.244.1.0/24".parse().unwrap();
        assert_eq!(gce_route_name(s), "flannel-10-244-1-0-24");
    }

    #[test]
    fn owned_routes_lie_inside_the_network() {
        let n: Ipv4Net = "10.244.0.0/16".parse().unwrap();
        assert!(owned(n, "10.244.7.0/24".parse().unwrap()));
        assert!(owned(n, n));
        assert!(!owned(n, "10.0.0.0/8".parse().unwrap()));
        assert!(!owned(n, "0.0.0.0/0".parse().unwrap()));
        assert!(!owned(n, "10.245.0.0/24".parse().unwrap()));
    }
}
