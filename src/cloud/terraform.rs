//! The cloud routes as Terraform JSON (`*.tf.json`): what a GitOps team
//! applies with the rest of its infrastructure. Keys are sorted (serde_json's
//! map), so the output is the same bytes for the same plan.
//!
//! aws-vpc: an `aws_instance` data source per node gives its primary network
//! interface (flanneld's route target) and subnet; an `aws_route` per node
//! with `for_each` over the route tables (routeTableIDs, or the tables of the
//! nodes' subnets found by `aws_route_table` data sources, as a set, so nodes
//! sharing a table share its routes). gce: a `google_compute_route` per node
//! with flanneld's name and priority.

use serde_json::{Map, Value, json};

use super::{AwsPlan, CloudPlan, GCE_PRIORITY, GcePlan};

/// The Terraform JSON document for the plan, with a trailing newline.
pub fn render(plan: &CloudPlan) -> String {
    let doc = match plan {
        CloudPlan::Aws(p) => aws(p),
        CloudPlan::Gce(p) => gce(p),
    };
    // Serialising a Value cannot fail.
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// The Terraform name of a node's objects: letters, digits, `-` (node and
/// cluster names are DNS labels), and a letter first.
fn name(cluster: &str, node: &str) -> String {
    format!("flannel-{cluster}-{node}")
}

fn aws(p: &AwsPlan) -> Value {
    let tables_local = format!("flannel-{}-route-tables", p.cluster);
    let mut instances = Map::new();
    let mut route_tables = Map::new();
    let mut routes = Map::new();
    for r in &p.routes {
        let n = name(&p.cluster, &r.node);
        instances.insert(n.clone(), json!({ "instance_id": r.instance_id }));
        if p.route_tables.is_empty() {
            route_tables.insert(n.clone(), json!({ "subnet_id": format!("${{data.aws_instance.{n}.subnet_id}}") }));
        }
        routes.insert(
            n.clone(),
            json!({
                "for_each": format!("${{local.{tables_local}}}"),
                "route_table_id": "${each.value}",
                "destination_cidr_block": r.dst.to_string(),
                "network_interface_id": format!("${{data.aws_instance.{n}.network_interface_id}}"),
            }),
        );
    }
    let tables: Value = if p.route_tables.is_empty() {
        let ids: Vec<String> = route_tables.keys().map(|n| format!("data.aws_route_table.{n}.id")).collect();
        Value::String(format!("${{toset([{}])}}", ids.join(", ")))
    } else {
        Value::String(format!("${{toset({})}}", json!(p.route_tables)))
    };
    let mut data = Map::new();
    data.insert("aws_instance".into(), Value::Object(instances));
    if !route_tables.is_empty() {
        data.insert("aws_route_table".into(), Value::Object(route_tables));
    }
    json!({
        "//": format!(
            "flannel-gen: the aws-vpc routes of cluster {} (pod network {}), one per node subnet to the node's \
             primary network interface in every route table. Also turn each instance's source/dest check off \
             (aws-vpc-routes.sh does; Terraform manages it only on instances it owns).",
            p.cluster, p.network
        ),
        "locals": { tables_local: tables },
        "data": data,
        "resource": { "aws_route": routes },
    })
}

fn gce(p: &GcePlan) -> Value {
    let mut routes = Map::new();
    for r in &p.routes {
        routes.insert(
            r.name.clone(),
            json!({
                "name": r.name,
                "project": p.project,
                "network": p.network_name,
                "dest_range": r.dest_range.to_string(),
                "next_hop_instance": r.instance,
                "next_hop_instance_zone": r.zone,
                "priority": GCE_PRIORITY,
                "description": format!("flannel-gen: cluster {}, node {}", p.cluster, r.node),
            }),
        );
    }
    json!({
        "//": format!(
            "flannel-gen: the gce routes of cluster {} (pod network {}), one per node subnet to the node's instance.",
            p.cluster, p.network
        ),
        "resource": { "google_compute_route": routes },
    })
}
