//! The cloud routes as shell scripts, for people without Terraform: the
//! `aws ec2` and `gcloud compute routes` calls flanneld's backends make, one
//! node at a time. They create or replace; removing a stale route is
//! `flannel-gen cloud apply`'s (aws-vpc) or the operator's (gce).

use std::fmt::Write;

use super::{AwsPlan, CloudPlan, GCE_PRIORITY, GcePlan};

/// The file name and text of the plan's script.
pub fn render(plan: &CloudPlan) -> (&'static str, String) {
    match plan {
        CloudPlan::Aws(p) => ("aws-vpc-routes.sh", aws(p)),
        CloudPlan::Gce(p) => ("gce-routes.sh", gce(p)),
    }
}

/// Shell functions of the aws-vpc script; every value they get is an id or a
/// CIDR the topology validated, so nothing needs quoting beyond `"$1"`.
const AWS_FUNCTIONS: &str = r#"set -eu

# The instance's primary network interface: flanneld's route target.
eni() {
  aws ec2 describe-instances --instance-ids "$1" --output text \
    --query 'Reservations[0].Instances[0].NetworkInterfaces[?Attachment.DeviceIndex==`0`].NetworkInterfaceId | [0]'
}

# The route table of the instance's subnet, else its VPC's main one (as flanneld finds it).
table_of() {
  subnet=$(aws ec2 describe-instances --instance-ids "$1" --output text --query 'Reservations[0].Instances[0].SubnetId')
  vpc=$(aws ec2 describe-instances --instance-ids "$1" --output text --query 'Reservations[0].Instances[0].VpcId')
  t=$(aws ec2 describe-route-tables --filters "Name=association.subnet-id,Values=$subnet" --output text \
    --query 'RouteTables[0].RouteTableId')
  if [ "$t" = None ]; then
    t=$(aws ec2 describe-route-tables --filters "Name=vpc-id,Values=$vpc" "Name=association.main,Values=true" \
      --output text --query 'RouteTables[0].RouteTableId')
  fi
  echo "$t"
}

# route TABLE CIDR ENI: replace the route, or create it.
route() {
  aws ec2 replace-route --route-table-id "$1" --destination-cidr-block "$2" --network-interface-id "$3" 2>/dev/null ||
    aws ec2 create-route --route-table-id "$1" --destination-cidr-block "$2" --network-interface-id "$3" >/dev/null
}
"#;

fn aws(p: &AwsPlan) -> String {
    let mut s = String::from("#!/bin/sh\n");
    let _ = writeln!(s, "# flannel-gen: the aws-vpc routes of cluster {} (pod network {}).", p.cluster, p.network);
    s.push_str(
        "# Needs the aws CLI and credentials (AWS_ENDPOINT_URL, AWS_REGION, ...). Per node:\n\
         # source/dest check off, and its subnet routed to its primary network interface\n\
         # in every route table. Stale routes stay: `flannel-gen cloud apply` removes them.\n",
    );
    s.push_str(AWS_FUNCTIONS);
    s.push('\n');
    if p.route_tables.is_empty() {
        s.push_str("tables=$(\n  {\n");
        for r in &p.routes {
            let _ = writeln!(s, "    table_of {}", r.instance_id);
        }
        s.push_str("  } | sort -u\n)\n");
    } else {
        let _ = writeln!(s, "tables=\"{}\"", p.route_tables.join(" "));
    }
    for r in &p.routes {
        let _ = write!(
            s,
            "\n# {node}: {dst}\n\
             aws ec2 modify-instance-attribute --instance-id {id} --no-source-dest-check\n\
             nic=$(eni {id})\n\
             for t in $tables; do route \"$t\" {dst} \"$nic\"; done\n",
            node = r.node,
            dst = r.dst,
            id = r.instance_id,
        );
    }
    s
}

fn gce(p: &GcePlan) -> String {
    let mut s = String::from("#!/bin/sh\n");
    let _ = writeln!(s, "# flannel-gen: the gce routes of cluster {} (pod network {}).", p.cluster, p.network);
    let _ = write!(
        s,
        "# Needs gcloud and credentials. Per node, flanneld's route: a route of another\n\
         # next hop is deleted and inserted again. Stale routes stay.\n\
         set -eu\n\
         \n\
         # route NAME RANGE INSTANCE ZONE\n\
         route() {{\n  \
           if hop=$(gcloud compute routes describe \"$1\" --project={project} --format='value(nextHopInstance)' 2>/dev/null); then\n    \
             case \"$hop\" in */zones/\"$4\"/instances/\"$3\") return 0 ;; esac\n    \
             gcloud compute routes delete \"$1\" --project={project} --quiet\n  \
           fi\n  \
           gcloud compute routes create \"$1\" --project={project} --network={network} --destination-range=\"$2\" \\\n    \
             --next-hop-instance=\"$3\" --next-hop-instance-zone=\"$4\" --priority={GCE_PRIORITY}\n\
         }}\n",
        project = p.project,
        network = p.network_name,
    );
    for r in &p.routes {
        let _ = write!(s, "\n# {}\nroute {} {} {} {}\n", r.node, r.name, r.dest_range, r.instance, r.zone);
    }
    s
}
