//! `flannel-gen cloud apply` for aws-vpc: reconcile the VPC route table(s)
//! with the plan through the EC2 API ([`super::ec2`]).
//!
//! Read everything first (the instances, the route tables), decide the
//! changes ([`changes`], pure), then write them in an order that loses no
//! traffic: source/dest check off, routes created or replaced, stale routes
//! deleted last. Owner rule: in the route tables flannel-gen works on, a route
//! whose destination lies inside the pod network and that `CreateRoute` made
//! (not the VPC's local route, not a propagated one) is flannel-gen's; every
//! other route is left alone.

use std::collections::BTreeSet;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::ec2::{self, Ec2, Instance, Settings, Table};
use super::{AwsPlan, owned};

pub struct Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Change {
    #[serde(rename_all = "camelCase")]
    SourceDestCheckOff { node: String, instance: String },
    #[serde(rename_all = "camelCase")]
    Create { table: String, destination: Ipv4Net, node: String, target: String },
    #[serde(rename_all = "camelCase")]
    Replace { table: String, destination: Ipv4Net, node: String, target: String, was: String },
    #[serde(rename_all = "camelCase")]
    Delete { table: String, destination: Ipv4Net, was: String },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::SourceDestCheckOff { node, instance } => write!(f, "~ {instance} ({node}): source/dest check off"),
            Change::Create { table, destination, node, target } => {
                write!(f, "+ {table}: {destination} -> {target} ({node})")
            }
            Change::Replace { table, destination, node, target, was } => {
                write!(f, "~ {table}: {destination} -> {target} ({node}), was -> {was}")
            }
            Change::Delete { table, destination, was } => {
                write!(f, "- {table}: {destination} -> {was} (no node has it)")
            }
        }
    }
}

/// What `cloud apply` did or would do.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub route_tables: Vec<String>,
    pub changes: Vec<Change>,
    /// How many of `changes` were made (all of them unless `error`).
    pub done: usize,
    pub dry_run: bool,
    pub error: Option<String>,
}

impl Outcome {
    pub fn exit_code(&self, dry_run: bool) -> u8 {
        use crate::error::exit;
        if self.error.is_some() {
            exit::SYSTEM
        } else if dry_run && !self.changes.is_empty() {
            exit::CHANGES
        } else {
            exit::OK
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if !self.route_tables.is_empty() {
            s.push_str(&format!("route tables: {}\n", self.route_tables.join(", ")));
        }
        for (i, c) in self.changes.iter().enumerate() {
            let state = if self.dry_run {
                "pending"
            } else if i < self.done {
                "done"
            } else {
                "not done"
            };
            s.push_str(&format!("{c} [{state}]\n"));
        }
        match (&self.error, self.changes.len()) {
            (Some(e), 0) => s.push_str(&format!("error: {e}\nnothing was changed\n")),
            (Some(e), n) => s.push_str(&format!("error: {e}\n{} of {n} changes were made before it\n", self.done)),
            (None, 0) => s.push_str("converged: nothing to change\n"),
            (None, n) if self.dry_run => s.push_str(&format!("{n} changes pending (dry run)\n")),
            (None, n) => s.push_str(&format!("{n} changes made\n")),
        }
        s
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Reconcile. `Err`: no region, credentials or usable endpoint (nothing was
/// called); every failure against the API is in the outcome, with what was
/// done before it.
pub fn reconcile(plan: &AwsPlan, opts: &Options) -> Result<Outcome, String> {
    let client = Ec2::new(Settings::resolve(opts.endpoint.clone(), opts.region.clone())?);
    Ok(run(plan, &client, opts.dry_run))
}

fn run(plan: &AwsPlan, client: &Ec2, dry_run: bool) -> Outcome {
    let mut outcome = Outcome { dry_run, ..Outcome::default() };
    let read = || -> Result<_, String> {
        let instances = describe_instances(client, plan)?;
        let tables = route_tables(client, plan, &instances)?;
        let live = describe_routes(client, &tables)?;
        Ok((instances, tables, live))
    };
    let (instances, tables, live) = match read() {
        Ok(r) => r,
        Err(e) => {
            outcome.error = Some(e);
            return outcome;
        }
    };
    outcome.route_tables = tables;
    outcome.changes = changes(plan, &instances, &live);
    if dry_run {
        return outcome;
    }
    for c in &outcome.changes {
        if let Err(e) = write(client, c) {
            outcome.error = Some(format!("{c}: {e}"));
            return outcome;
        }
        outcome.done += 1;
    }
    outcome
}

fn answer(action: &str) -> impl Fn(String) -> String {
    let action = action.to_string();
    move |m| ec2::Ec2Error::Answer { action: action.clone(), message: m }.to_string()
}

/// Every node's instance, in plan order; an instance EC2 does not know is an error.
fn describe_instances(client: &Ec2, plan: &AwsPlan) -> Result<Vec<Instance>, String> {
    let ids: Vec<String> = plan.routes.iter().map(|r| r.instance_id.clone()).collect();
    let xml = client.call("DescribeInstances", &ec2::list("InstanceId", &ids)).map_err(|e| e.to_string())?;
    let found = ec2::xml_instances(&xml).map_err(answer("DescribeInstances"))?;
    ids.iter()
        .map(|id| {
            let i = found.iter().find(|i| &i.id == id).ok_or_else(|| format!("instance {id} is not in the account"))?;
            if i.eni.is_empty() {
                return Err(format!("instance {id} has no network interface"));
            }
            Ok(i.clone())
        })
        .collect()
}

/// The topology's route tables, or the tables of the nodes' subnets (each
/// subnet's own, else its VPC's main table, as flanneld finds it), sorted.
fn route_tables(client: &Ec2, plan: &AwsPlan, instances: &[Instance]) -> Result<Vec<String>, String> {
    if !plan.route_tables.is_empty() {
        return Ok(plan.route_tables.clone());
    }
    let mut tables = BTreeSet::new();
    let subnets: BTreeSet<(&str, &str)> = instances.iter().map(|i| (i.subnet.as_str(), i.vpc.as_str())).collect();
    for (subnet, vpc) in subnets {
        let table = match first_table(client, &[("association.subnet-id", subnet)])? {
            Some(t) => t,
            None => first_table(client, &[("vpc-id", vpc), ("association.main", "true")])?
                .ok_or_else(|| format!("subnet {subnet}: no route table, and VPC {vpc} has no main one"))?,
        };
        tables.insert(table);
    }
    Ok(tables.into_iter().collect())
}

fn first_table(client: &Ec2, filters: &[(&str, &str)]) -> Result<Option<String>, String> {
    let xml = client.call("DescribeRouteTables", &ec2::filters(filters)).map_err(|e| e.to_string())?;
    let tables = ec2::xml_route_tables(&xml).map_err(answer("DescribeRouteTables"))?;
    Ok(tables.into_iter().next().map(|t| t.id))
}

/// Each table's IPv4 routes, in the order of `tables`.
fn describe_routes(client: &Ec2, tables: &[String]) -> Result<Vec<Table>, String> {
    let xml = client.call("DescribeRouteTables", &ec2::list("RouteTableId", tables)).map_err(|e| e.to_string())?;
    let found = ec2::xml_route_tables(&xml).map_err(answer("DescribeRouteTables"))?;
    tables
        .iter()
        .map(|id| {
            found.iter().find(|t| &t.id == id).cloned().ok_or_else(|| format!("route table {id} is not in the account"))
        })
        .collect()
}

/// The changes that make `live` match the plan (pure): source/dest check
/// first, then creates and replaces, then deletes.
pub fn changes(plan: &AwsPlan, instances: &[Instance], live: &[Table]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut deletes = Vec::new();
    for (r, i) in plan.routes.iter().zip(instances) {
        if i.source_dest_check {
            out.push(Change::SourceDestCheckOff { node: r.node.clone(), instance: i.id.clone() });
        }
    }
    for Table { id: table, routes } in live {
        for (r, i) in plan.routes.iter().zip(instances) {
            match routes.iter().find(|l| l.dst == r.dst) {
                Some(l) if l.active && l.eni.as_deref() == Some(i.eni.as_str()) => {}
                Some(l) => out.push(Change::Replace {
                    table: table.clone(),
                    destination: r.dst,
                    node: r.node.clone(),
                    target: i.eni.clone(),
                    was: l.target.clone(),
                }),
                None => out.push(Change::Create {
                    table: table.clone(),
                    destination: r.dst,
                    node: r.node.clone(),
                    target: i.eni.clone(),
                }),
            }
        }
        for l in routes {
            let stale = l.created && owned(plan.network, l.dst) && !plan.routes.iter().any(|r| r.dst == l.dst);
            if stale {
                deletes.push(Change::Delete { table: table.clone(), destination: l.dst, was: l.target.clone() });
            }
        }
    }
    out.extend(deletes);
    out
}

fn write(client: &Ec2, c: &Change) -> Result<(), ec2::Ec2Error> {
    let p = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    let route = |table: &String, dst: &Ipv4Net| {
        vec![("RouteTableId", table.clone()), ("DestinationCidrBlock", dst.to_string())]
    };
    let (action, params) = match c {
        Change::SourceDestCheckOff { instance, .. } => (
            "ModifyInstanceAttribute",
            p(&[("InstanceId", instance.clone()), ("SourceDestCheck.Value", "false".into())]),
        ),
        Change::Create { table, destination, target, .. } => {
            let mut r = route(table, destination);
            r.push(("NetworkInterfaceId", target.clone()));
            ("CreateRoute", p(&r))
        }
        Change::Replace { table, destination, target, .. } => {
            let mut r = route(table, destination);
            r.push(("NetworkInterfaceId", target.clone()));
            ("ReplaceRoute", p(&r))
        }
        Change::Delete { table, destination, .. } => ("DeleteRoute", p(&route(table, destination))),
    };
    client.call(action, &params).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::AwsRoute;
    use crate::cloud::ec2::xml::LiveRoute;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn setup() -> (AwsPlan, Vec<Instance>) {
        let plan = AwsPlan {
            cluster: "c".into(),
            network: net("10.244.0.0/16"),
            route_tables: vec!["rtb-00000001".into()],
            routes: vec![
                AwsRoute { node: "a".into(), dst: net("10.244.1.0/24"), instance_id: "i-0000000a".into() },
                AwsRoute { node: "b".into(), dst: net("10.244.2.0/24"), instance_id: "i-0000000b".into() },
            ],
        };
        let inst = |id: &str, eni: &str, check| Instance {
            id: id.into(),
            eni: eni.into(),
            subnet: "subnet-1".into(),
            vpc: "vpc-1".into(),
            source_dest_check: check,
        };
        (plan, vec![inst("i-0000000a", "eni-a", false), inst("i-0000000b", "eni-b", true)])
    }

    fn route(dst: &str, target: &str, created: bool) -> LiveRoute {
        let eni = target.starts_with("eni-").then(|| target.to_string());
        LiveRoute { dst: net(dst), target: target.into(), eni, created, active: true }
    }

    #[test]
    fn only_owned_routes_change_and_deletes_come_last() {
        let (plan, inst) = setup();
        let live = vec![Table {
            id: "rtb-00000001".to_string(),
            routes: vec![
                route("172.31.0.0/16", "local", false),
                route("0.0.0.0/0", "igw-1", true),
                route("10.244.1.0/24", "eni-a", true),
                route("10.244.2.0/24", "eni-old", true),
                route("10.244.9.0/24", "eni-gone", true),
                route("10.245.0.0/24", "eni-x", true),
                route("10.244.0.0/16", "vgw-1", false),
            ],
        }];
        let c = changes(&plan, &inst, &live);
        assert_eq!(
            c.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "~ i-0000000b (b): source/dest check off",
                "~ rtb-00000001: 10.244.2.0/24 -> eni-b (b), was -> eni-old",
                "- rtb-00000001: 10.244.9.0/24 -> eni-gone (no node has it)",
            ]
        );
    }

    #[test]
    fn a_converged_table_needs_nothing() {
        let (plan, mut inst) = setup();
        inst[1].source_dest_check = false;
        let live = vec![Table {
            id: "rtb-00000001".to_string(),
            routes: vec![route("10.244.1.0/24", "eni-a", true), route("10.244.2.0/24", "eni-b", true)],
        }];
        assert!(changes(&plan, &inst, &live).is_empty());
        let mut blackholed = live.clone();
        blackholed[0].routes[0].active = false;
        assert_eq!(changes(&plan, &inst, &blackholed).len(), 1, "a blackhole route to the right target is replaced");
    }
}
